"""How every daemon takes SIGTERM and SIGINT, and the exit codes they all use.

The first signal asks the process to finish what it has in hand and stop; a second one exits at
once with EXIT_FORCED, whatever is in hand.
"""
from __future__ import annotations

import logging
import os
import signal
from contextlib import contextmanager
from types import FrameType
from typing import Callable, Iterator

log = logging.getLogger(__name__)

EXIT_OK = 0  # stopped by a signal after finishing its work, or done
EXIT_FAILED = 1  # a command that failed (e.g. migrate could not reach a store)
EXIT_USAGE = 2  # bad flags or settings, including a local-only adapter for a distributed role
EXIT_FORCED = 130  # a second signal: exited at once, work in hand abandoned

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
Handler = Callable[[int, "FrameType | None"], None]


@contextmanager
def on_stop_signals(handler: Handler) -> Iterator[None]:
    """`handler` for SIGTERM and SIGINT inside the block; the previous handlers after it."""
    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # a worker blocks them until now (prefork)
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


@contextmanager
def drain_then_exit(stop: Callable[[], None], stopping: Callable[[], bool], finishing: str) -> Iterator[None]:
    """The first signal calls `stop()` (the process finishes `finishing`, then returns); a signal
    while `stopping()` exits at once with EXIT_FORCED."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stopping():
            log.warning("second signal %s: exiting now", name)
            os._exit(EXIT_FORCED)
        log.info("signal %s: finishing %s", name, finishing)
        stop()

    with on_stop_signals(handler):
        yield
