"""`profefe serve` as a subprocess, fed the real Go fixtures over HTTP and read by `go tool pprof`."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest

from shared import pprof
from tests.e2e.embedded import free_port, get_json, profefe_command, stamped_now

pytestmark = [pytest.mark.e2e, pytest.mark.go]

TESTDATA = Path(__file__).resolve().parent.parent / "testdata"
WINDOW = {"from": "2000-01-01T00:00:00", "to": "2100-01-01T00:00:00"}
START_TIMEOUT = 60.0


class Server:
    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "serve.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROFEFE_")}
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [*profefe_command(), "serve", "--addr", f"127.0.0.1:{self.port}", "--data-dir", str(tmp_path / "data")],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"profefe serve exited:\n{self.log_path.read_text()}"
            try:
                with urllib.request.urlopen(self.url + "/api/0/version", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"profefe serve did not answer:\n{self.log_path.read_text()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self.log.close()


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    try:
        s.wait_until_up()
        yield s
    finally:
        s.stop()


def fixtures(kind: str) -> list[Path]:
    found = sorted(TESTDATA.glob(f"{kind}-*.pb.gz"))
    assert found, f"no {kind} fixtures under {TESTDATA}"
    return found


def post(server: Server, path: Path, ptype: str, service: str = "e2e") -> dict:
    query = urlencode({"service": service, "type": ptype, "labels": f"file={path.name}"})
    req = urllib.request.Request(f"{server.url}/api/0/profiles?{query}", data=path.read_bytes(), method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200
        return json.loads(resp.read())["body"]


def totals_of(paths) -> tuple[int, ...]:
    sums: list[int] = []
    for p in paths:
        t = pprof.totals(pprof.parse(p.read_bytes(), max_decompressed=256 << 20))
        sums = [a + b for a, b in zip(sums, t)] if sums else list(t)
    return tuple(sums)


_SAMPLE = re.compile(r"^\s+(-?\d+(?:\s+-?\d+)*):(?:\s|$)")


def raw_totals(go_bin: str, url: str, tmp_path: Path) -> tuple[int, ...]:
    """Sum of every sample's values, as `go tool pprof -raw` prints them."""
    out = pprof_output(go_bin, ["-raw", url], tmp_path)  # -raw is an output format of its own: no -top
    lines = out.splitlines()
    start = lines.index("Samples:") + 2  # the line after "Samples:" names the sample types
    sums: list[int] = []
    for line in lines[start:]:
        if not line.strip() or not line.startswith(" "):
            break
        m = _SAMPLE.match(line)
        if m is None:
            continue  # a label line of the sample above
        values = [int(v) for v in m.group(1).split()]
        sums = [a + b for a, b in zip(sums, values)] if sums else values
    return tuple(sums)


def pprof_output(go_bin: str, args: list[str], tmp_path: Path) -> str:
    env = {**os.environ, "PPROF_TMPDIR": str(tmp_path)}  # HOME stays: the go build cache lives there
    done = subprocess.run([go_bin, "tool", "pprof", *args], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("kind", ["cpu", "heap", "block", "mutex", "goroutine", "threadcreate"])
def test_live_merge_totals_equal_the_inputs(server, go_bin, tmp_path, kind):
    paths = fixtures(kind)
    for p in paths:
        assert post(server, p, kind)["type"] == kind
    url = f"{server.url}/api/0/profiles/merge?{urlencode({'service': 'e2e', 'type': kind, **WINDOW})}"
    assert raw_totals(go_bin, url, tmp_path) == totals_of(paths)


def test_single_and_listed_ids(server, go_bin, tmp_path):
    paths = fixtures("cpu")[:3]
    ids = [post(server, p, "cpu")["id"] for p in paths]
    single = f"{server.url}/api/0/profiles/{ids[0]}"
    with urllib.request.urlopen(single, timeout=30) as resp:
        assert resp.read() == paths[0].read_bytes()
    top = pprof_output(go_bin, ["-top", single], tmp_path)
    assert "flat%" in top
    assert raw_totals(go_bin, single, tmp_path) == totals_of(paths[:1])
    pair = f"{server.url}/api/0/profiles/{ids[0]}+{ids[1]}"
    assert "flat%" in pprof_output(go_bin, ["-top", pair], tmp_path)
    assert raw_totals(go_bin, pair, tmp_path) == totals_of(paths[:2])


def test_find_services_and_an_unknown_id(server):
    paths = fixtures("heap")
    for p in paths:
        post(server, p, "heap", service="svc-b")
    post(server, fixtures("cpu")[0], "cpu", service="svc-a")
    status, env = get_json(f"{server.url}/api/0/services")
    assert (status, env["body"]) == (200, ["svc-a", "svc-b"])
    status, env = get_json(f"{server.url}/api/0/profiles?{urlencode({'service': 'svc-b', **WINDOW})}")
    assert status == 200 and len(env["body"]) == len(paths)
    stamps = [(p["created_at"], p["id"]) for p in env["body"]]
    assert stamps == sorted(stamps)
    status, env = get_json(f"{server.url}/api/0/profiles/0000000000000000000a")
    assert (status, env["error"]) == (404, 'nothing found: no profile with id "0000000000000000000a"')


def test_sigterm_stops_it_cleanly(tmp_path):
    s = Server(tmp_path)
    s.wait_until_up()
    body = tmp_path / "cpu-now.pb.gz"
    body.write_bytes(stamped_now(fixtures("cpu")[0].read_bytes()))
    post(s, body, "cpu")
    assert s.stop() == 0, s.log_path.read_text()
    assert "listening on http://127.0.0.1:" in s.log_path.read_text()
    # The data outlives the process: a new server on the same folder still has it.
    again = Server(tmp_path)
    try:
        again.wait_until_up()
        status, env = get_json(f"{again.url}/api/0/services")
        assert (status, env["body"]) == (200, ["e2e"])
    finally:
        assert again.stop() == 0
