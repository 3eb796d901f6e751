"""`profefe serve` as a real subprocess on a free loopback port, for the end-to-end tests."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

START_TIMEOUT = 60.0


def profefe_command() -> list[str]:
    """The installed `profefe` console script beside this interpreter, else the module."""
    script = Path(sys.executable).with_name("profefe")
    if script.exists():
        return [str(script)]
    found = shutil.which("profefe")
    return [found] if found else [sys.executable, "-m", "services.cli"]


def stamped_now(data: bytes) -> bytes:
    """A stored fixture profile stamped with the current time. The fixtures keep the time they were
    made, and once that is older than serve's raw retention (7 days) a compactor pass that runs
    during a test (one runs at every start) deletes them as raw profiles."""
    from shared import pprof

    p = pprof.parse(data)
    p.time_nanos = time.time_ns()
    return pprof.write(p)


# Ports for the daemons the tests start are handed out below the kernel's ephemeral range
# (32768-60999): a port from bind(0) is free only until the daemon binds it, and in between any
# outgoing connection (the suites open thousands) may take it as its local port, or another
# process's bind(0) be given it. Each pytest process takes its own block, so two never pick the
# same: the xdist workers gw0, gw1, ... blocks 1, 2, ...; a process without xdist (the fault
# suite beside them, a plain run) block 0.
PORT_BLOCKS_START = 24000
PORT_BLOCK_SIZE = 800
_last_port: int | None = None


def _port_block() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = 1 + int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    if PORT_BLOCKS_START + (index + 1) * PORT_BLOCK_SIZE > 32768:
        raise RuntimeError(f"no port block for xdist worker {worker}: at most "
                           f"{(32768 - PORT_BLOCKS_START) // PORT_BLOCK_SIZE - 1} workers")
    return PORT_BLOCKS_START + index * PORT_BLOCK_SIZE


def free_port() -> int:
    """A loopback port nothing listens on, from this process's block, never the same one twice in a
    row (a daemon just stopped may still hold its port)."""
    global _last_port
    block = _port_block()
    start = _last_port + 1 if _last_port is not None else block + os.getpid() % PORT_BLOCK_SIZE
    for i in range(PORT_BLOCK_SIZE):
        port = block + (start - block + i) % PORT_BLOCK_SIZE
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))  # no SO_REUSEADDR: a port in TIME_WAIT is passed over too
            except OSError:
                continue
        _last_port = port
        return port
    raise RuntimeError(f"no free loopback port in {block}-{block + PORT_BLOCK_SIZE - 1}")


# For tests that post the fixtures as they are, dated the day they were made: however long ago
# that is, the compactor's retention keeps them (serve's 7 days of raw profiles and 90 of windows
# would have a pass during the test delete them).
KEEP_FIXTURES = ("--raw-retention", "36500d", "--window-retention", "36500d")


@contextlib.contextmanager
def running_serve(data_dir: Path, log_path: Path, *flags: str) -> Iterator[str]:
    """Starts `profefe serve` with `flags`, waits until it answers, yields its base URL, stops it."""
    proc, url = start_serve(data_dir, log_path, *flags)
    try:
        yield url
    finally:
        stop_serve(proc)


def start_serve(data_dir: Path, log_path: Path, *flags: str) -> tuple[subprocess.Popen, str]:
    """`profefe serve` on a free port with `flags`, its output appended to `log_path`; returns
    once it answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROFEFE_")}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [*profefe_command(), "serve", "--addr", f"127.0.0.1:{port}", "--data-dir", str(data_dir), *flags],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
    try:
        _wait_until_up(proc, url, log_path)
    except BaseException:
        stop_serve(proc)
        raise
    return proc, url


def stop_serve(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 20 s; waits for it to go."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_until_up(proc: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"profefe serve exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(url + "/api/0/version", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            time.sleep(0.2)
    raise AssertionError(f"profefe serve did not answer within {START_TIMEOUT}s:\n{log_path.read_text()}")


def get_json(url: str) -> tuple[int, dict]:
    """GET a JSON route; (status, envelope) for success and error replies alike."""
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def get_bytes(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.read()
