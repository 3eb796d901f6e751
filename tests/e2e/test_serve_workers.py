"""`profefe serve --workers 2`: two processes on one socket, both storing into one data folder;
every 200 is found afterwards, and SIGTERM to the parent stops both and exits 0."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest

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


def post(url: str, service: str, n: int) -> int:
    # Each upload a profile of its own (label n): the same bytes and labels again are one profile.
    query = urlencode({"service": service, "type": "cpu", "labels": f"n={n}"})
    req = urllib.request.Request(f"{url}/api/0/profiles?{query}", data=BODY, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status


def test_two_workers_share_the_socket_and_the_data(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROFEFE_")}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*profefe_command(), "serve", "--addr", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "data"),
             "--workers", "2", "--compact-interval", "0"],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        try:
            _wait_until_up(proc, url, log_path)
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
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
