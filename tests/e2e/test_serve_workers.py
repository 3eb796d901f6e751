"""`profefe serve --workers 2`: two processes on one socket, both storing into one data folder;
every 200 is found afterwards, a scrape of either worker counts both, SIGTERM to the parent stops
both and exits 0, and SIGKILL to it takes them with it."""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator
from urllib.parse import urlencode

import pytest

from shared import pprof
from tests.e2e.embedded import _wait_until_up, free_port, get_json, profefe_command

pytestmark = [pytest.mark.e2e]

BODY = (Path(__file__).resolve().parents[1] / "testdata" / "cpu-1.pb.gz").read_bytes()


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def still_running(pids: set[int], within: float) -> list[int]:
    """Those of `pids` that have not exited `within` seconds from now."""
    deadline = time.monotonic() + within
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def post(url: str, service: str, n: int) -> int:
    # Each upload a profile of its own (label n): the same bytes and labels again are one profile.
    query = urlencode({"service": service, "type": "cpu", "labels": f"n={n}"})
    req = urllib.request.Request(f"{url}/api/0/profiles?{query}", data=BODY, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status


@contextlib.contextmanager
def serving(tmp_path: Path, *flags: str, wait: bool = True,
            tmpdir: Path | None = None) -> Iterator[tuple[subprocess.Popen, int, Path]]:
    """`serve --workers 2` on a free port; answering when `wait`; its temporary files in `tmpdir`."""
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROFEFE_")}
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*profefe_command(), "serve", "--addr", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "data"),
             "--workers", "2", *flags],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        try:
            if wait:
                _wait_until_up(proc, f"http://127.0.0.1:{port}", log_path)
            yield proc, port, log_path
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                found.add(target[8:-1])
    return found


def answered_by(conn: http.client.HTTPConnection, port: int, workers: set[int]) -> int:
    """The worker holding the server side of `conn` (kept alive after an answer)."""
    client_port = conn.sock.getsockname()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and int(fields[2].split(":")[1], 16) == client_port:
            inode = fields[9]
    assert inode is not None, f"no server side of 127.0.0.1:{client_port} in /proc/net/tcp"
    owners = [pid for pid in workers if inode in socket_inodes(pid)]
    assert len(owners) == 1, owners
    return owners[0]


def connection_to_each(port: int, workers: set[int]) -> dict[int, http.client.HTTPConnection]:
    """A kept-alive connection answered by each worker: the kernel hands a new connection to
    whichever worker accepts first, so connect until both have one."""
    held: dict[int, http.client.HTTPConnection] = {}
    spare = []
    for _ in range(200):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/api/0/version")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
        pid = answered_by(conn, port, workers)
        if pid in held:
            spare.append(conn)  # kept open until the end, so the next one is not accepted the same way
        else:
            held[pid] = conn
        if len(held) == len(workers):
            break
    for conn in spare:
        conn.close()
    assert len(held) == len(workers), f"every connection went to {set(held)}"
    return held


def scrape(conn: http.client.HTTPConnection) -> str:
    conn.request("GET", "/metrics")
    resp = conn.getresponse()
    body = resp.read().decode()
    assert resp.status == 200, body
    return body


def sample(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert found, f"no {name} in:\n{text}"
    return float(found.group(1))


def metrics_folder(pid: int, within: float = 10.0) -> Path:
    """The folder of metric values a worker maps (prometheus-client's multiprocess files), waiting
    for a worker still starting: the collector answers once either worker does."""
    deadline = time.monotonic() + within
    while True:
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            if "profefe-metrics-" in path:
                return Path(path).parent
        if time.monotonic() > deadline:
            raise AssertionError(f"worker {pid} maps no metric values after {within:g} s")
        time.sleep(0.05)


def test_a_scrape_of_either_worker_counts_the_uploads_of_both_and_the_compactor(tmp_path):
    with serving(tmp_path, "--compact-interval", "1") as (proc, port, log_path):
        workers = children_of(proc.pid)
        assert len(workers) == 2, log_path.read_text()
        first, second = connection_to_each(port, workers).items()
        uploads = {first[0]: 3, second[0]: 5}
        for pid, conn in (first, second):
            for n in range(uploads[pid]):
                query = urlencode({"service": "scraped", "type": "cpu", "labels": f"n={pid}-{n}"})
                conn.request("POST", f"/api/0/profiles?{query}", body=BODY)
                resp = conn.getresponse()
                assert resp.status == 200, resp.read()
                resp.read()
        deadline = time.monotonic() + 30
        for _pid, conn in (first, second):
            text = scrape(conn)
            assert sample(text, "profefe_ingested_profiles_total") == 8, text
            assert sample(text, "profefe_ingested_bytes_total") == 8 * len(BODY)
            assert 'profefe_build_info{role="serve"} 1.0' in text
            # The compactor runs in one worker; its passes are counted in both workers' answers.
            while sample(text, "profefe_compactor_passes_total") < 1 and time.monotonic() < deadline:
                time.sleep(0.5)
                text = scrape(conn)
            assert sample(text, "profefe_compactor_passes_total") >= 1, text
            assert sample(text, "profefe_compactor_last_pass_timestamp_seconds") > 0
        folder = metrics_folder(first[0])
        assert metrics_folder(second[0]) == folder
        for _pid, conn in (first, second):
            conn.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log_path.read_text()
        assert not folder.exists(), "the parent leaves its workers' metric values behind"


def test_a_parent_killed_with_sigkill_takes_its_workers_with_it(tmp_path):
    with serving(tmp_path, "--compact-interval", "0") as (proc, port, log_path):
        workers = children_of(proc.pid)
        assert len(workers) == 2, log_path.read_text()
        proc.kill()
        proc.wait()
        alive = still_running(workers, within=10)
        assert not alive, f"workers {alive} outlived their parent"


def test_a_start_removes_the_metric_values_a_killed_parent_left(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    ended = subprocess.Popen(["true"])
    ended.wait()  # its pid names a parent that is gone
    stale = tmp / f"profefe-metrics-{ended.pid}-x1"
    stale.mkdir()
    (stale / "counter_1.db").write_bytes(b"\0" * 64)
    running = tmp / f"profefe-metrics-{os.getpid()}-x2"  # a running process's: kept
    running.mkdir()
    with serving(tmp_path, "--compact-interval", "0", tmpdir=tmp) as (proc, _port, log_path):
        workers = children_of(proc.pid)
        assert len(workers) == 2, log_path.read_text()
        left = metrics_folder(next(iter(workers)))
        assert left.parent == tmp
        assert not stale.exists()
        assert running.exists()
        proc.kill()
        proc.wait()
        assert not still_running(workers, within=10)
        assert left.exists()  # nothing could remove it
    with serving(tmp_path, "--compact-interval", "0", tmpdir=tmp) as (proc, _port, log_path):
        assert not left.exists(), "a new start keeps the folder of a parent killed with SIGKILL"
        assert running.exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log_path.read_text()
    assert sorted(p.name for p in tmp.iterdir()) == [running.name]


def test_two_workers_share_the_socket_and_the_data(tmp_path):
    with serving(tmp_path, "--compact-interval", "0") as (proc, port, log_path):
        url = f"http://127.0.0.1:{port}"
        workers = children_of(proc.pid)
        assert len(workers) == 2, log_path.read_text()

        statuses: list[int] = []
        lock = threading.Lock()

        def send(first: int) -> None:
            for n in range(first, first + 5):
                status = post(url, "workers", n)
                with lock:
                    statuses.append(status)

        threads = [threading.Thread(target=send, args=(5 * i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert statuses == [200] * 20

        query = urlencode({"service": "workers", "type": "cpu", "from": "2000-01-01T00:00:00",
                           "to": "2100-01-01T00:00:00"})
        status, found = get_json(f"{url}/api/0/profiles?{query}")
        assert status == 200, found
        assert len(found["body"]) == 20

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log_path.read_text()
        assert children_of(proc.pid) == set()
        for pid in workers:
            assert not Path(f"/proc/{pid}").exists()
        assert "2 workers" in log_path.read_text()


def test_each_worker_reads_what_the_other_stored(tmp_path):
    # Each worker appends to a pack of its own; downloads and merges read both, through the shared index.
    with serving(tmp_path, "--compact-interval", "0") as (proc, port, log_path):
        workers = children_of(proc.pid)
        assert len(workers) == 2, log_path.read_text()
        (first, one), (second, other) = connection_to_each(port, workers).items()
        stored: dict[int, str] = {}
        for pid, conn in ((first, one), (second, other)):
            conn.request("POST", "/api/0/profiles?" + urlencode({"service": "shared", "type": "cpu",
                                                                 "labels": f"by={pid}"}), body=BODY)
            resp = conn.getresponse()
            assert resp.status == 200
            stored[pid] = json.loads(resp.read())["body"]["id"]
        for conn, written_by in ((one, second), (other, first)):
            conn.request("GET", f"/api/0/profiles/{stored[written_by]}")
            resp = conn.getresponse()
            assert resp.status == 200 and resp.read() == BODY
            conn.request("GET", "/api/0/profiles/merge?" + urlencode({
                "service": "shared", "type": "cpu", "from": "2000-01-01T00:00:00", "to": "2100-01-01T00:00:00"}))
            resp = conn.getresponse()
            merged = resp.read()
            assert resp.status == 200, merged
            assert pprof.totals(pprof.parse(merged)) == tuple(2 * t for t in pprof.totals(pprof.parse(BODY)))
        assert len(list((tmp_path / "data" / "blobs" / ".packs").glob("*.pack"))) == 2


def test_a_sigterm_while_the_workers_start_is_a_clean_stop(tmp_path):
    with serving(tmp_path, wait=False) as (proc, _port, log_path):
        deadline = time.monotonic() + 60
        while len(children_of(proc.pid)) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, log_path.read_text()
            time.sleep(0.005)
        # Forked, but still opening the data folder and building the app: not serving yet.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log_path.read_text()
