"""The compactor's loop: each pass builds every due hourly window, then every due daily window,
then applies retention; about once per `orphan_age` it also deletes orphan window blobs (written
by a compactor that died before switching the row to them); one log line per pass; `stats` for
whoever reports on it.

`stop()` is a flag: the window in hand is finished (its claim ends with its row written), then
`run` returns. A window that fails is logged and left for the next pass; the others go on.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from services.compactor import schedule
from services.compactor.compact import Built, WindowBuilder
from services.compactor.config import CompactorConfig
from shared.model import blob_key
from shared.ports import BlobStore, WindowStore
from shared.windows import WINDOW_PREFIX, HourState

log = logging.getLogger(__name__)


@dataclass
class CompactorStats:
    """Totals since start, and the state after the last pass (read by metrics; written by one thread)."""

    passes: int = 0
    windows_built: int = 0
    windows_rebuilt: int = 0  # of them, ones that replaced a stale window
    days_built: int = 0
    failures: int = 0
    raw_pruned: int = 0
    windows_dropped: int = 0
    orphans_swept: int = 0
    pending: int = 0  # closed hours still to compact after the last pass
    lag_seconds: int = 0  # how far the oldest of them lies behind now
    last_pass_seconds: float = 0.0
    last_pass_at: float = 0.0


@dataclass
class PassReport:
    hours: int = 0
    rebuilt: int = 0
    days: int = 0
    failed: int = 0
    raw_pruned: int = 0
    windows_dropped: int = 0
    orphans_swept: int = 0
    pending: list[HourState] = field(default_factory=list)


class Compactor:
    def __init__(self, windows: WindowStore, blobs: BlobStore, cfg: CompactorConfig,
                 clock: Callable[[], float] = time.time) -> None:
        self.windows = windows
        self.blobs = blobs
        self.cfg = cfg
        self.clock = clock
        self.builder = WindowBuilder(windows, blobs, clock=clock, max_decompressed_bytes=cfg.max_decompressed_bytes)
        self.stats = CompactorStats()
        self.after_pass: Callable[[], None] = lambda: None  # e.g. metrics copying `stats`
        self._stopping = threading.Event()
        self._next_sweep = 0.0  # the first pass sweeps: orphans are what a crash leaves behind

    def stop(self) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self) -> None:
        """Pass after pass, `interval` seconds apart, until `stop()`."""
        while not self.stopping:
            try:
                self.run_pass()
            except Exception:  # a database outage must not end the loop: the next pass retries
                self.stats.failures += 1
                log.exception("compactor pass failed")
            self.after_pass()
            self._stopping.wait(self.cfg.interval)

    def run_pass(self) -> PassReport:
        started = time.monotonic()
        h = schedule.horizon(self.clock(), self.cfg)
        report = PassReport()
        self._hours(h, report)
        self._days(h, report)
        if not self.stopping:
            self._retention(h, report)
        if not self.stopping and h.now >= self._next_sweep:
            self._sweep_orphans(h.now, report)
            self._next_sweep = h.now + self.cfg.orphan_age
        report.pending = self.windows.pending_hours(h.closed_before, h.windows_before, self.cfg.batch)
        self._record(h, report, time.monotonic() - started)
        return report

    def _hours(self, h: schedule.Horizon, report: PassReport) -> None:
        tried: set[tuple[str, int]] = set()
        while not self.stopping:
            due = [s for s in self.windows.pending_hours(h.closed_before, h.windows_before, self.cfg.batch + len(tried))
                   if (s.series_id, s.hour) not in tried]
            if not due:
                return
            for state in due:
                if self.stopping:
                    return
                tried.add((state.series_id, state.hour))
                self._count(report, self._attempt(self.builder.hour, state), daily=False)

    def _days(self, h: schedule.Horizon, report: PassReport) -> None:
        tried: set[tuple[str, int]] = set()
        while not self.stopping:
            due = [d for d in self.windows.pending_days(h.closed_before, h.windows_before, self.cfg.batch + len(tried))
                   if d not in tried]
            if not due:
                return
            for series_id, day in due:
                if self.stopping:
                    return
                tried.add((series_id, day))
                self._count(report, self._attempt(self.builder.day, series_id, day), daily=True)

    def _attempt(self, build, *args) -> Built | None | Exception:
        try:
            return build(*args)
        except Exception as exc:  # one bad window must not stop the others
            log.exception("compacting %s failed", args)
            return exc

    @staticmethod
    def _count(report: PassReport, outcome: Built | None | Exception, *, daily: bool) -> None:
        if isinstance(outcome, Exception):
            report.failed += 1
        elif outcome is not None:
            if daily:
                report.days += 1
            else:
                report.hours += 1
            report.rebuilt += outcome.rebuilt

    def _retention(self, h: schedule.Horizon, report: PassReport) -> None:
        overridden = [s for s, _ in h.raw_before_for]
        for service, before in h.raw_cutoffs():
            while not self.stopping:
                if service is None:
                    ids = self.windows.prune_raw(before, h.windows_before, other_than=overridden, limit=self.cfg.batch)
                else:
                    ids = self.windows.prune_raw(before, h.windows_before, service=service, limit=self.cfg.batch)
                for pid in ids:
                    self.blobs.delete(blob_key(pid))
                report.raw_pruned += len(ids)
                if not ids:
                    break
        while not self.stopping:
            keys = self.windows.drop_windows(h.windows_before, limit=self.cfg.batch)
            for key in keys:
                self.blobs.delete(key)
            report.windows_dropped += len(keys)
            if len(keys) < self.cfg.batch:
                break

    def _sweep_orphans(self, now: float, report: PassReport) -> None:
        cutoff = now - self.cfg.orphan_age
        old = [key for key, written in self.blobs.list(WINDOW_PREFIX) if written.timestamp() < cutoff]
        for start in range(0, len(old), self.cfg.batch):
            if self.stopping:
                return
            chunk = old[start:start + self.cfg.batch]
            kept = self.windows.referenced(chunk)
            for key in chunk:
                if key not in kept:
                    self.blobs.delete(key)
                    report.orphans_swept += 1

    def _record(self, h: schedule.Horizon, report: PassReport, seconds: float) -> None:
        st = self.stats
        st.passes += 1
        st.windows_built += report.hours + report.days
        st.windows_rebuilt += report.rebuilt
        st.days_built += report.days
        st.failures += report.failed
        st.raw_pruned += report.raw_pruned
        st.windows_dropped += report.windows_dropped
        st.orphans_swept += report.orphans_swept
        st.pending = len(report.pending)
        st.lag_seconds = schedule.lag(h, report.pending)
        st.last_pass_seconds = seconds
        st.last_pass_at = h.now
        log.info(
            "compactor pass: %d hourly (%d were stale), %d daily, %d failed, %d raw pruned, "
            "%d windows dropped, %d orphans swept, %s%d pending, lag %ds, %.2fs",
            report.hours, report.rebuilt, report.days, report.failed, report.raw_pruned,
            report.windows_dropped, report.orphans_swept, "at least " if len(report.pending) >= self.cfg.batch else "",
            len(report.pending), st.lag_seconds, seconds,
        )



def start_thread(compactor: Compactor) -> threading.Thread:
    """The compactor beside `profefe serve`'s HTTP server; `compactor.stop()` then `join` ends it."""
    thread = threading.Thread(target=compactor.run, name="compactor", daemon=True)
    thread.start()
    return thread
