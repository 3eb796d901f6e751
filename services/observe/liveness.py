"""Liveness of the worker loops, and the indexer's per-batch metrics taken in its own thread."""
from __future__ import annotations

import threading
import time
from typing import Callable

from services.observe.metrics import Metrics
from shared.errors import Unavailable
from shared.ports import Queue


class Progress:
    """Liveness of a loop: healthy while its progress marker keeps changing within `stall_after`."""

    def __init__(self, marker: Callable[[], object], stall_after: float = 120.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._marker = marker
        self._stall_after = stall_after
        self._clock = clock
        self._last = marker()
        self._since = clock()
        self._lock = threading.Lock()

    def problem(self) -> str | None:
        with self._lock:
            now, marker = self._clock(), self._marker()
            if marker != self._last:
                self._last, self._since = marker, now
                return None
            idle = now - self._since
        if idle > self._stall_after:
            return f"no progress for {idle:.0f}s"
        return None


class IndexerMetrics:
    """The indexer's `on_step` hook: times each non-empty batch and samples the consumer lag
    every `lag_every` seconds, in the loop's own thread (the Kafka consumer is not thread-safe)."""

    def __init__(self, queue: Queue, metrics: Metrics, *, lag_every: float = 15.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.queue = queue
        self.metrics = metrics
        self.lag_every = lag_every
        self.clock = clock
        self._lag_at = float("-inf")

    def __call__(self, settled: int, seconds: float) -> None:
        if settled:
            self.metrics.batch_size.observe(settled)
            self.metrics.batch_seconds.observe(seconds)
        if self.clock() - self._lag_at < self.lag_every:
            return
        try:
            behind = self.queue.lag()
        except Unavailable:
            behind = {}  # the next poll reports Kafka trouble; a missing sample is not worth a retry
        for partition, records in behind.items():
            self.metrics.consumer_lag.labels(str(partition)).set(records)
        if behind:  # until partitions are assigned, ask again on the next step
            self._lag_at = self.clock()
