"""`profefe serve` under the worst local faults: SIGKILL during ingest at full rate, then a restart;
and a full disk under its data folder (a small tmpfs), then space coming back."""
from __future__ import annotations

import concurrent.futures
import hashlib
import http.client
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from shared import pprof
from tests.e2e.embedded import get_json, start_serve, stop_serve
from tests.support import unavailable

pytestmark = pytest.mark.e2e

TESTDATA = Path(__file__).resolve().parents[1] / "testdata"
T0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z


def bodies(n: int) -> Iterator[bytes]:
    """`n` distinct real CPU profiles: the fixtures in turn, each with its own time_nanos."""
    fixtures = [pprof.parse(p.read_bytes()) for p in sorted(TESTDATA.glob("cpu-*.pb.gz"))]
    for i in range(n):
        p = fixtures[i % len(fixtures)]
        p.time_nanos = T0 + i * 10**9
        yield pprof.write(p)


def post(url: str, body: bytes) -> tuple[int, dict | str]:
    req = urllib.request.Request(f"{url}/api/0/profiles?service=crash&type=cpu", data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())["body"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:  # the server was killed under us
        return 0, str(exc)


def blob_ids(data_dir: Path) -> set[str]:
    """The profile ids with a blob: packed (in the packs' index) or as a file."""
    root = data_dir / "blobs" / "profiles"
    ids = {p.name for p in root.rglob("*") if p.is_file()} if root.exists() else set()
    with sqlite3.connect(data_dir / "blobs" / ".packs" / "index.db") as db:
        ids.update(r[0].rsplit("/", 1)[1] for r in db.execute("SELECT key FROM blobs WHERE key LIKE 'profiles/%'"))
    return ids


def row_ids(data_dir: Path) -> set[str]:
    with sqlite3.connect(data_dir / "profefe.db") as db:
        return {r[0] for r in db.execute("SELECT id FROM profiles")}


def temporaries(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "blobs").rglob(".tmp-*")]


def test_sigkill_during_ingest_loses_no_acknowledged_profile_and_leaves_nothing_half_written(tmp_path):
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    proc, url = start_serve(data, log, "--compact-interval", "0")
    acked: dict[str, bytes] = {}
    lock = threading.Lock()
    killed = threading.Event()

    def upload(body: bytes) -> None:
        if killed.is_set():
            return
        status, reply = post(url, body)
        if status == 200:
            assert isinstance(reply, dict)
            with lock:
                acked[reply["id"]] = body
                if len(acked) >= 300 and not killed.is_set():
                    killed.set()
                    proc.send_signal(signal.SIGKILL)  # mid-stream: other uploads are in flight

    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(upload, bodies(3000)))
        proc.wait(timeout=20)
        assert killed.is_set() and proc.returncode == -signal.SIGKILL, "the load ended before the kill"

        proc, url = start_serve(data, log, "--compact-interval", "0")
        assert blob_ids(data) == row_ids(data), "after a restart every blob has its row and every row its blob"
        assert temporaries(data) == []
        for pid, body in acked.items():
            with urllib.request.urlopen(f"{url}/api/0/profiles/{pid}", timeout=30) as resp:
                assert hashlib.sha256(resp.read()).digest() == hashlib.sha256(body).digest(), pid
        assert len(acked) >= 300
    finally:
        stop_serve(proc)


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 6 MiB tmpfs: the data folder on a disk that fills up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        unavailable("root and mount(8), to mount a small tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        unavailable(f"a tmpfs mount ({done.stderr.strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_answers_507_keeps_reads_and_resumes_when_space_returns(small_disk, tmp_path):
    data = small_disk / "data"
    log = tmp_path / "serve.log"
    ballast = small_disk / "ballast"  # what an operator deletes to make room
    ballast.write_bytes(b"\0" * (2 << 20))
    proc, url = start_serve(data, log, "--compact-interval", "0")
    try:
        stored: dict[str, bytes] = {}
        refused = None
        source = bodies(2000)
        for body in source:
            status, reply = post(url, body)
            if status == 200:
                assert isinstance(reply, dict)
                stored[reply["id"]] = body
                continue
            refused = (status, reply)
            break
        assert refused is not None, "the disk never filled"
        status, text = refused
        assert status == 507, refused
        assert '"code": 507' in text and "insufficient storage: " in text, text
        assert "no space left" in text.lower() or "disk is full" in text, text
        assert len(stored) > 10

        # Reads keep working, and nothing half written is left behind.
        code, found = get_json(f"{url}/api/0/profiles?service=crash&type=cpu&from=2026-01-01T00:00:00"
                               f"&to=2026-01-02T00:00:00")
        assert code == 200 and {p["id"] for p in found["body"]} == set(stored)
        pid = next(iter(stored))
        with urllib.request.urlopen(f"{url}/api/0/profiles/{pid}", timeout=30) as resp:
            assert resp.read() == stored[pid]
        # Every row has its blob; a blob whose row the full disk refused may be left (its delete
        # refused too), until the restart below.
        assert row_ids(data) <= blob_ids(data)
        assert temporaries(data) == []

        # Space returns (an operator deletes something): uploads go through again, unasked.
        ballast.unlink()
        deadline = time.monotonic() + 30
        while True:
            status, reply = post(url, next(source))
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert status == 200, reply
        assert row_ids(data) <= blob_ids(data)

        stop_serve(proc)
        proc, url = start_serve(data, log, "--compact-interval", "0")
        assert blob_ids(data) == row_ids(data)
        assert temporaries(data) == []
    finally:
        stop_serve(proc)
