"""`serve --http native` answers as `serve --http waitress` does: the same requests sent to both,
on fresh data folders, get the same status, body and headers. The uploads take the native
server's batch path; everything else its WSGI threads."""
from __future__ import annotations

import gzip
import http.client
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.api import pprofs
from tests.e2e.embedded import KEEP_FIXTURES, running_serve

pytestmark = pytest.mark.e2e

MAX_BODY = 4096
# Headers a client may act on; Date and Content-Length (equal bodies are compared) left out.
COMPARED = ("content-type", "content-encoding", "content-disposition", "vary", "allow", "retry-after",
            "x-request-id", "server")

CPU = pprofs.cpu(time_nanos=1_700_000_000_000_000_000)
HEAP = pprofs.heap(time_nanos=1_700_000_000_000_000_000)
OVER = b"\x1f\x8b" + b"x" * MAX_BODY  # past --max-body-bytes as sent
SPAN = "from=2023-11-01T00:00:00Z&to=2023-12-01T00:00:00Z"

# (method, target, body, extra headers): in this order, against each server.
REQUESTS: list[tuple[str, str, bytes | None, dict[str, str]]] = [
    ("POST", "/api/0/profiles?service=svc&type=cpu&labels=az=a,host=h1", CPU, {}),
    ("POST", "/api/0/profiles?service=svc&type=cpu&labels=az=a,host=h1", CPU, {}),  # the same again: same id
    ("POST", "/api/0/profiles?service=svc&type=heap", HEAP, {}),
    ("POST", "/api/0/profiles?service=svc&service=other&type=cpu", CPU, {}),  # the first value counts
    ("POST", "/api/0/profiles?type=cpu", CPU, {}),
    ("POST", "/api/0/profiles?service=svc&type=heap", CPU, {}),  # sample types of another type
    ("POST", "/api/0/profiles?service=svc&type=cpu", b"not a profile", {}),
    ("POST", "/api/0/profiles?type=cpu", b"not a profile", {}),  # the parameters are checked first
    ("POST", "/api/0/profiles?service=svc&type=cpu", b"", {}),
    ("POST", "/api/0/profiles?service=%ff&type=cpu", CPU, {}),
    ("POST", "/api/0/profiles?service=svc&type=nope", CPU, {}),
    ("POST", "/api/0/profiles?service=svc&type=cpu", OVER, {}),
    ("POST", "/api/0/profiles?service=svc&type=trace&created_at=2023-11-14T22:13:20Z", b"a trace", {}),
    ("POST", "/api/0/profiles/", CPU, {}),
    ("PUT", "/api/0/profiles?service=svc&type=cpu", CPU, {}),
    ("GET", f"/api/0/profiles?service=svc&type=cpu&{SPAN}", None, {}),
    ("GET", f"/api/0/profiles?service=svc&type=cpu&{SPAN}", None, {"Accept-Encoding": "gzip"}),
    ("GET", f"/api/0/profiles/merge?service=svc&type=cpu&{SPAN}", None, {}),
    ("GET", "/api/0/services", None, {}),
    ("HEAD", "/api/0/version", None, {}),
    ("GET", "/api/0/profiles/%E2%82%AC", None, {}),
    ("GET", "/nowhere", None, {}),
    ("DELETE", "/api/0/services", None, {}),
    ("POST", "/api/0/services", b"x", {}),
]


def exchange(base: str, method: str, target: str, body: bytes | None, headers: dict[str, str],
             request_id: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(urlsplit(base).hostname, urlsplit(base).port, timeout=30)
    try:
        conn.request(method, target, body=body, headers={"X-Request-Id": request_id, **headers})
        resp = conn.getresponse()
        got = {k.lower(): v for k, v in resp.getheaders() if k.lower() in COMPARED}
        if "allow" in got:  # werkzeug lists them from a set: its order is the process's hash seed
            got["allow"] = ", ".join(sorted(got["allow"].split(", ")))
        data = resp.read()
        if got.get("content-encoding") == "gzip":
            data = gzip.decompress(data)
        return resp.status, got, data
    finally:
        conn.close()


def answers(tmp: Path, server: str) -> list[tuple[int, dict[str, str], bytes]]:
    with running_serve(tmp / server, tmp / f"{server}.log", "--http", server, "--compact-interval", "0",
                       "--max-body-bytes", str(MAX_BODY), *KEEP_FIXTURES) as base:
        return [exchange(base, *req, request_id=f"req-{i}") for i, req in enumerate(REQUESTS)]


def test_every_answer_is_the_same_under_both_servers(tmp_path):
    waitress, native = answers(tmp_path, "waitress"), answers(tmp_path, "native")
    statuses = [a[0] for a in native]
    assert statuses.count(200) >= 8 and {400, 404, 405, 413} <= set(statuses)
    for req, theirs, ours in zip(REQUESTS, waitress, native):
        assert ours == theirs, f"{req[0]} {req[1]}"


def test_concurrent_uploads_are_each_answered_and_stored(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    bodies = [pprofs.cpu(time_nanos=1_700_000_000_000_000_000 + i * 1_000_000_000) for i in range(64)]
    with running_serve(tmp_path / "data", tmp_path / "serve.log", "--http", "native", "--compact-interval", "0",
                       *KEEP_FIXTURES) as base:
        with ThreadPoolExecutor(16) as pool:
            got = list(pool.map(lambda ib: exchange(base, "POST", "/api/0/profiles?service=many&type=cpu", ib[1],
                                                    {}, f"up-{ib[0]}"), enumerate(bodies)))
        assert [g[0] for g in got] == [200] * 64
        assert [g[1]["x-request-id"] for g in got] == [f"up-{i}" for i in range(64)]
        status, _, listed = exchange(base, "GET", f"/api/0/profiles?service=many&type=cpu&{SPAN}&limit=100",
                                     None, {}, "list")
        assert status == 200
        ids = {json.loads(g[2])["body"]["id"] for g in got}
        assert len(ids) == 64 and ids <= {p["id"] for p in json.loads(listed)["body"]}
    log = (tmp_path / "serve.log").read_text()
    assert sum(1 for line in log.splitlines() if '"route": "/api/0/profiles"' in line and '"status": 200' in line) == 65
    assert "ERROR" not in log
