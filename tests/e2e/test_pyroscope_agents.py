"""Pyroscope's real agents sending to us: `pyroscope-io` (Python, Connect Push) and the
`pyroscope-go` SDK (Go, /ingest multipart) in tests/fixtures/pyrogo, first to `profefe serve`,
then through the distributed pipeline; after a few uploads `go tool pprof -top` on our merge URL
must put each program's hot function on top, and so must the flame graph Grafana's Pyroscope data
source asks for (SelectMergeStacktraces)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pytest

from tests.e2e import distributed
from tests.e2e.embedded import get_json, running_serve
from tests.support import unavailable

pytestmark = [pytest.mark.e2e, pytest.mark.go]

PYROGO = Path(__file__).resolve().parents[1] / "fixtures" / "pyrogo"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
UPLOADS = 2  # profiles to wait for: the agent's upload cycle, repeated
# pyroscope-io uploads every 10 s and cannot be told otherwise; two of them and start-up, with room.
UPLOAD_TIMEOUT = 90.0

HOT_PY = "pyro_hot_function"
PYTHON_APP = f"""
import sys, time, pyroscope
pyroscope.configure(application_name=sys.argv[2], server_address=sys.argv[1], tags={{"fixture": "pyroscope-io"}},
                    basic_auth_username="agent", basic_auth_password=sys.argv[3])

def {HOT_PY}(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total

# A quarter of a core: the on-CPU profile is the same, and the tests beside this one keep the rest.
while True:
    began = time.monotonic()
    {HOT_PY}(200_000)
    time.sleep(3 * (time.monotonic() - began))
"""


@pytest.fixture(scope="module")
def pyroscope_io() -> None:
    try:
        import pyroscope  # noqa: F401
    except ImportError:
        unavailable("pyroscope-io (pip install -e '.[test]')")


@pytest.fixture(scope="module")
def pyrogo_bin(go_bin, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pyrogo") / "pyrogo"
    built = subprocess.run([go_bin, "build", "-o", str(out), "."], cwd=PYROGO, capture_output=True, text=True,
                           timeout=600)
    assert built.returncode == 0, f"go build ./tests/fixtures/pyrogo failed:\n{built.stderr}"
    return out


def python_agent(url: str, app: str, tmp_path: Path, token: str = "") -> subprocess.Popen:
    script = tmp_path / "pyroapp.py"
    script.write_text(PYTHON_APP)
    return subprocess.Popen([sys.executable, str(script), url, app, token], stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / f"{app}.log", "wb"))


def go_agent(binary: Path, url: str, app: str, tmp_path: Path, token: str = "") -> subprocess.Popen:
    return subprocess.Popen([str(binary), "-server", url, "-app", app, "-upload", "2s", "-password", token],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"{app}.log", "wb"))


def window(since: datetime) -> dict[str, str]:
    return {"from": since.strftime(TIME_FORMAT),
            "to": (datetime.now(timezone.utc) + timedelta(minutes=1)).strftime(TIME_FORMAT)}


def wait_for_uploads(query_url: str, service: str, since: datetime, agent: subprocess.Popen, log: Path) -> list[dict]:
    deadline = time.monotonic() + UPLOAD_TIMEOUT
    found: list[dict] = []
    while time.monotonic() < deadline:
        assert agent.poll() is None, f"the agent exited with {agent.returncode}:\n{log.read_text()[-2000:]}"
        status, env = get_json(f"{query_url}/api/0/profiles?" + urllib.parse.urlencode(
            {"service": service, "type": "cpu", **window(since)}))
        found = env.get("body", []) if status == 200 else []
        if len(found) >= UPLOADS:
            return found
        time.sleep(1)
    raise AssertionError(f"{len(found)} of {UPLOADS} CPU profiles of {service} within {UPLOAD_TIMEOUT}s:\n"
                         f"{log.read_text()[-2000:]}")


def top_function(go_bin: str, query_url: str, service: str, since: datetime) -> str:
    url = f"{query_url}/api/0/profiles/merge?" + urllib.parse.urlencode(
        {"service": service, "type": "cpu", **window(since)})
    top = subprocess.run([go_bin, "tool", "pprof", "-top", url], capture_output=True, text=True, timeout=120)
    assert top.returncode == 0, top.stderr
    lines = top.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("flat"))
    return lines[header + 1]


def grafana_flame_top(query_url: str, service: str, since: datetime) -> str:
    """The frame with the largest self value in the flame graph Grafana's data source asks for."""
    body = json.dumps({"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
                       "labelSelector": f'{{service_name="{service}"}}', "maxNodes": 16384,
                       "start": int(since.timestamp() * 1000), "end": int(time.time() * 1000) + 60_000}).encode()
    status, _, data = distributed.request(query_url, "POST", "/querier.v1.QuerierService/SelectMergeStacktraces", body,
                                          headers={"Content-Type": "application/json"})
    assert status == 200, data
    graph = json.loads(data)["flamegraph"]
    nodes = [(int(v[i + 2]), graph["names"][int(v[i + 3])])
             for level in graph["levels"] for v in [level["values"]] for i in range(0, len(v), 4)]
    return max(nodes)[1]


def run_agents(agents: list[tuple[Callable[[], subprocess.Popen], Path, str]], query_url: str, go_bin: str,
               since: datetime) -> list[tuple[list[dict], str]]:
    """Each (start, log, service) agent running at once until its uploads arrive, then the top
    function of its merge; the agents' upload cycles overlap instead of adding up."""
    running: list[subprocess.Popen] = []
    try:
        for start, _, _ in agents:
            running.append(start())
        found = [wait_for_uploads(query_url, service, since, agent, log)
                 for agent, (_, log, service) in zip(running, agents)]
    finally:
        for agent in running:
            agent.terminate()
        for agent in running:
            agent.wait(timeout=30)
    return [(f, top_function(go_bin, query_url, service, since)) for f, (_, _, service) in zip(found, agents)]


def run_agent(start: Callable[[], subprocess.Popen], log: Path, query_url: str, service: str, go_bin: str,
              since: datetime) -> tuple[list[dict], str]:
    return run_agents([(start, log, service)], query_url, go_bin, since)[0]


def test_pyroscope_io_to_serve(pyroscope_io, go_bin, tmp_path):
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    with running_serve(tmp_path / "data", tmp_path / "serve.log") as url:
        found, top = run_agent(lambda: python_agent(url, "pyapp", tmp_path), tmp_path / "pyapp.log", url, "pyapp",
                               go_bin, since)
        assert HOT_PY in top, top
        assert HOT_PY in grafana_flame_top(url, "pyapp", since)
        keys = {lb["key"] for lb in found[0].get("labels", [])}
        assert "fixture" in keys and not any(k.startswith("__") for k in keys), found[0]


def test_pyroscope_go_to_serve(pyrogo_bin, go_bin, tmp_path):
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    with running_serve(tmp_path / "data", tmp_path / "serve.log") as url:
        _, top = run_agent(lambda: go_agent(pyrogo_bin, url, "pyrogo", tmp_path), tmp_path / "pyrogo.log", url,
                           "pyrogo", go_bin, since)
        assert "pyrogoHotLoop" in top or "sha256" in top, top
        status, env = get_json(f"{url}/api/0/profiles?" + urllib.parse.urlencode(
            {"service": "pyrogo", "type": "heap", **window(since)}))
        assert status == 200 and env["body"], "pyroscope-go's heap uploads are stored as heap"


@pytest.mark.kafka
@pytest.mark.s3
@pytest.mark.postgres
def test_both_agents_through_the_pipeline_with_tokens(request, pyroscope_io, pyrogo_bin, go_bin, tmp_path):
    kafka, s3, pg = distributed.real_services(request)
    (tmp_path / "stack").mkdir()
    stack = distributed.Stack(kafka, s3, pg, tmp_path / "stack")
    token = "pyro-token"
    try:
        stack.migrate()
        query = stack.start("query-api")
        ingest = stack.start("ingest-api", PROFEFE_INGEST_TOKENS=token)
        indexer = stack.start("indexer")
        for d in (query, ingest, indexer):
            stack.wait_ready(d)
        since = datetime.now(timezone.utc) - timedelta(minutes=1)
        status, _, _ = distributed.request(ingest.url, "POST", "/ingest?name=x.cpu", b"main 1\n")
        assert status == 401
        (_, go_top), (_, py_top) = run_agents(
            [(lambda: go_agent(pyrogo_bin, ingest.url, "pyrogo-d", tmp_path, token), tmp_path / "pyrogo-d.log",
              "pyrogo-d"),
             (lambda: python_agent(ingest.url, "pyapp-d", tmp_path, token), tmp_path / "pyapp-d.log", "pyapp-d")],
            query.url, go_bin, since)
        assert "pyrogoHotLoop" in go_top or "sha256" in go_top, go_top
        assert HOT_PY in py_top, py_top
        assert HOT_PY in grafana_flame_top(query.url, "pyapp-d", since)
        codes = stack.stop()
        assert all(code == 0 for code in codes.values()), codes
    finally:
        stack.close()

