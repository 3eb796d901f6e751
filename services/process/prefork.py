"""Several `serve` processes on one listening socket: the parent binds it, forks the workers, and
only waits, passing SIGTERM/SIGINT on to them.

Python runs one thread of bytecode at a time, so one process parses and validates uploads on one
core; workers that share the socket (the kernel hands each connection to one of them) use every
core. Before it forks, the parent only brings the schema up to date (closing that connection) and
starts no threads; each worker opens the database and builds its own app after the fork: threads
and database connections do not survive a fork.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import sys
from types import FrameType
from typing import Callable

from services.process.signals import EXIT_FAILED, EXIT_FORCED, EXIT_OK, STOP_SIGNALS, on_stop_signals

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

# Runs in a worker: given its number (0 first) and the inherited socket, serves until a signal.
Work = Callable[[int, socket.socket], int]


def listen(host: str, port: int, backlog: int = 1024) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def die_with(parent: int) -> None:
    """SIGKILL this process when `parent` dies (Linux): a parent killed by SIGKILL, which cannot
    pass the signal on, takes its workers with it, as one process would go, instead of leaving
    them serving on its socket."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        log.warning("workers will outlive a killed parent: prctl: %s", os.strerror(ctypes.get_errno()))
    elif os.getppid() != parent:  # it died before the prctl
        os._exit(EXIT_FAILED)


def run_workers(sock: socket.socket, workers: int, work: Work) -> int:
    """Fork `workers` processes running `work(i, sock)`; return once all have exited: EXIT_OK when
    every one did, else the first other code. A worker that dies unasked stops the others."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    children: dict[int, int] = {}
    parent = os.getpid()
    # A signal that comes while a worker still starts waits until its handlers are in place
    # (`on_stop_signals` unblocks it): it stops then instead of dying mid-start. Blocked before
    # the fork, so that threads a worker starts at once (its log writer) block it too; the
    # parent's own handler unblocks it here below.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    for i in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker
            code = EXIT_FAILED
            try:
                # Its own process group: a Ctrl-C at a terminal reaches the parent alone, which
                # passes it on once (twice would be a second signal: exit at once).
                os.setpgid(0, 0)
                die_with(parent)
                code = work(i, sock)
            except BaseException:  # noqa: BLE001 - a worker must never return into the parent's code
                log.exception("worker %d failed", i)
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = i
    sock.close()  # the workers hold it now

    signals = {"n": 0}

    def forward(signum: int, _frame: FrameType | None) -> None:
        signals["n"] += 1
        for pid in children:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    first_bad = EXIT_OK
    # Every signal is passed on: the workers drain on the first and exit at once on the second.
    with on_stop_signals(forward):
        while children:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            if pid not in children:
                continue
            i = children.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            if code != EXIT_OK and first_bad == EXIT_OK:
                first_bad = code if code > 0 else EXIT_FAILED
            if signals["n"] == 0:
                log.error("worker %d exited with %d unasked: stopping the others", i, code)
                signals["n"] = 1
                forward(signal.SIGTERM, None)
    if signals["n"] > 1 and first_bad == EXIT_OK:
        return EXIT_FORCED
    return first_bad
