"""SIGTERM under load, for every daemon: each exits 0, every request a server answered reached
its client (the request ids in the server's JSON request log equal the ones the clients got
back), and every profile acknowledged with a 200 is found afterwards."""
from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.e2e import distributed
from tests.e2e.embedded import free_port, profefe_command, stamped_now

pytestmark = [pytest.mark.e2e]

BODY = stamped_now((Path(__file__).resolve().parents[1] / "testdata" / "cpu-1.pb.gz").read_bytes())
WINDOW = {"from": "2000-01-01T00:00:00", "to": "2100-01-01T00:00:00"}


class Load:
    """Client threads, each on its own keep-alive connection, sending `target()` until stopped
    or until the server is gone; every answer is kept by the request id it was sent with."""

    def __init__(self, base: str, method: str, target, body: bytes | None = None, threads: int = 3) -> None:
        self.base, self.method, self.target, self.body = base, method, target, body
        self.prefix = f"load-{uuid.uuid4().hex[:8]}-"  # tells its requests from the test's own in the log
        self.answers: dict[str, tuple[int, bytes]] = {}
        self.refused = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self) -> None:
        netloc = urllib.parse.urlsplit(self.base).netloc
        conn = None
        refused_since = None
        while not self._stop.is_set():
            rid = self.prefix + uuid.uuid4().hex
            try:
                conn = conn or http.client.HTTPConnection(netloc, timeout=30)
                conn.request(self.method, self.target(), body=self.body, headers={"X-Request-Id": rid})
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
                with self._lock:
                    self.refused += 1
                refused_since = refused_since or time.monotonic()
                if time.monotonic() - refused_since > 2:
                    return  # the server is gone
                time.sleep(0.05)
                continue
            refused_since = None
            assert resp.getheader("X-Request-Id") == rid
            with self._lock:
                self.answers[rid] = (resp.status, data)

    def wait_for(self, ok: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.ok()) < ok:
            assert time.monotonic() < deadline, f"only {len(self.ok())} of {ok} answers within {timeout}s"
            time.sleep(0.05)

    def ok(self) -> dict[str, bytes]:
        with self._lock:
            return {rid: data for rid, (status, data) in self.answers.items() if status == 200}

    def statuses(self) -> set[int]:
        with self._lock:
            return {status for status, _ in self.answers.values()}

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=40)


def logged_request_ids(log: str, prefix: str) -> dict[str, int]:
    """request id -> status from the JSON request lines of a daemon's log, for ids with `prefix`."""
    out = {}
    for line in log.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("logger") == "profefe.access" and entry["request_id"].startswith(prefix):
                out[entry["request_id"]] = entry["status"]
    return out


def assert_every_answer_arrived(log: str, load: Load) -> None:
    served = logged_request_ids(log, load.prefix)
    assert served, "the daemon logged no requests"
    got = {rid: status for rid, (status, _) in load.answers.items()}
    lost = {rid: status for rid, status in served.items() if rid not in got}
    assert not lost, f"{len(lost)} answered by the server but never received, e.g. {sorted(lost.items())[:5]}"


def uploads(base: str, service: str) -> Load:
    target = f"/api/0/profiles?{urlencode({'service': service, 'type': 'cpu'})}"
    return Load(base, "POST", lambda: target, BODY)


def acknowledged_ids(load: Load) -> list[str]:
    return [json.loads(data)["body"]["id"] for data in load.ok().values()]


def http_get(url: str) -> int:
    status, _, _ = distributed.request(url, "GET", urllib.parse.urlsplit(url).path, timeout=10)
    return status


def scrape(base: str, name: str, timeout: float = 30) -> float:
    """The value of an unlabelled sample, or the sum over its labels, once it is exported."""
    deadline = time.monotonic() + timeout
    while True:
        _, _, data = distributed.request(base, "GET", "/metrics", timeout=10)
        values = [float(line.rsplit(" ", 1)[1]) for line in data.decode().splitlines()
                  if line.startswith(name + " ") or line.startswith(name + "{")]
        if values:
            return sum(values)
        assert time.monotonic() < deadline, f"{name} not exported by {base} within {timeout}s"
        time.sleep(0.2)


def wait_health(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while http_get(url + "/readyz") != 200:
        assert time.monotonic() < deadline, f"{url}/readyz not ready within {timeout}s"
        time.sleep(0.2)


@pytest.mark.kafka
@pytest.mark.s3
@pytest.mark.postgres
def test_every_distributed_daemon_stops_cleanly_under_load(request, tmp_path):
    kafka, s3, pg = distributed.real_services(request)
    stack = distributed.Stack(kafka, s3, pg, tmp_path)
    try:
        stack.migrate()
        query = stack.start("query-api")
        ingest = stack.start("ingest-api")
        health = f"127.0.0.1:{free_port()}"
        indexer = stack.start("indexer", "--health-addr", health)
        compactor_health = f"127.0.0.1:{free_port()}"
        compactor = stack.start("compactor", "--interval", "1", "--grace", "0", "--health-addr", compactor_health)
        for d in (query, ingest, indexer):
            stack.wait_ready(d)
        wait_health(f"http://{health}")
        wait_health(f"http://{compactor_health}")

        load = uploads(ingest.url, f"shutdown-{stack.name}")
        load.wait_for(20)
        deadline = time.monotonic() + 30
        while scrape(f"http://{health}", "profefe_indexer_indexed_total") == 0:
            assert time.monotonic() < deadline, "the indexer's metrics never counted an indexed record"
            time.sleep(0.2)
        assert scrape(f"http://{health}", "profefe_kafka_consumer_lag") >= 0
        assert scrape(f"http://{health}", "profefe_indexer_batch_size_count") > 0
        # The indexer, mid-stream: it finishes and commits its batch and leaves the rest to the next one.
        assert indexer.stop() == 0, indexer.log()
        assert "indexer: stopped after" in indexer.log()
        again = stack.start("indexer")
        stack.wait_ready(again)
        load.wait_for(60)
        assert scrape(ingest.url, "profefe_ingested_profiles_total") >= 60
        assert scrape(ingest.url, "profefe_ingested_bytes_total") >= 60 * len(BODY)
        # The ingest API, mid-upload: every upload it answered was answered to its client.
        assert ingest.stop() == 0, ingest.log()
        load.stop()
        assert load.statuses() == {200}, load.statuses()
        assert_every_answer_arrived(ingest.log(), load)
        acked = acknowledged_ids(load)
        distributed.wait_visible(query.url, acked)
        assert scrape(f"http://{compactor_health}", "profefe_compactor_passes_total") > 0

        # The query API, mid-read.
        ids = iter(acked * 100)
        reads = Load(query.url, "GET", lambda: f"/api/0/profiles/{next(ids)}")
        reads.wait_for(30)
        assert query.stop() == 0, query.log()
        reads.stop()
        assert reads.statuses() == {200}, reads.statuses()
        assert_every_answer_arrived(query.log(), reads)
        assert all(data == BODY for data in reads.ok().values())

        # The compactor, between or inside passes.
        assert compactor.stop() == 0, compactor.log()
        assert "compactor pass:" in compactor.log()

        # Nothing acknowledged is missing, read by a fresh query API.
        fresh = stack.start("query-api")
        stack.wait_ready(fresh)
        distributed.wait_visible(fresh.url, acked)
        codes = stack.stop()
        assert all(code == 0 for code in codes.values()), codes
    finally:
        stack.close()


def start_serve(data_dir: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROFEFE_")}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([*profefe_command(), "serve", "--addr", f"127.0.0.1:{port}", "--data-dir",
                                 str(data_dir), "--compact-interval", "1", "--grace", "0"],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while http_get(url + "/readyz") != 200:
        assert proc.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.2)
    return proc, url


def test_serve_stops_cleanly_under_load(tmp_path):
    log_path = tmp_path / "serve.log"
    proc, url = start_serve(tmp_path / "data", log_path)
    try:
        load = uploads(url, "shutdown-serve")
        load.wait_for(40)
        assert scrape(url, "profefe_compactor_passes_total") > 0  # the compactor thread reports through serve
        proc.terminate()
        assert proc.wait(timeout=40) == 0, log_path.read_text()
        load.stop()
        assert load.statuses() == {200}, load.statuses()
        assert_every_answer_arrived(log_path.read_text(), load)
        acked = acknowledged_ids(load)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    proc, url = start_serve(tmp_path / "data", log_path)
    try:
        status, _, data = distributed.request(url, "GET", f"/api/0/profiles?{urlencode({'service': 'shutdown-serve', **WINDOW})}")
        assert status == 200
        assert {p["id"] for p in json.loads(data)["body"]} == set(acked)
    finally:
        proc.terminate()
        assert proc.wait(timeout=40) == 0


def send_half(url: str, body: bytes) -> socket.socket:
    """An upload whose headers and first half are sent; the rest is up to the caller."""
    host, port = urllib.parse.urlsplit(url).netloc.split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = (f"POST /api/0/profiles?service=half&type=cpu HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Length: {len(body)}\r\nX-Request-Id: half-1\r\n\r\n").encode()
    sock.sendall(head + body[: len(body) // 2])
    return sock


def test_a_request_being_read_is_finished_and_a_second_signal_exits_at_once(tmp_path):
    log_path = tmp_path / "serve.log"
    proc, url = start_serve(tmp_path / "data", log_path)
    try:
        sock = send_half(url, BODY)
        time.sleep(0.3)
        proc.terminate()
        time.sleep(1.0)
        assert proc.poll() is None, "stopped while a request was still being read"
        assert http_get(url + "/healthz") == 0, "still accepting after SIGTERM"
        sock.sendall(BODY[len(BODY) // 2:])
        answer = sock.makefile("rb").read()
        sock.close()
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        assert proc.wait(timeout=30) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    proc, url = start_serve(tmp_path / "data", log_path)
    try:
        sock = send_half(url, BODY)
        time.sleep(0.3)
        proc.terminate()
        time.sleep(1.0)
        assert proc.poll() is None
        proc.terminate()
        assert proc.wait(timeout=10) == 130, log_path.read_text()
        sock.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
