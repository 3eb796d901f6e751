"""The indexer daemon's loop: poll a batch -> store every blob -> write the rows in one
transaction -> commit the offsets, in that order, so an offset only moves once its profile is
durable and findable (at-least-once; the writes are keyed by id, so a redelivery changes nothing).

A record that can never be indexed (it does not decode, or a store refuses it for good) goes to
the dead-letter queue with the reason and the loop goes on. A store that does not answer
(`Unavailable`) is retried with backoff on the same batch, never skipped and never committed.
`stop()` (the first SIGTERM) lets the current batch finish and be committed; a batch that is
still waiting for a store that is down is left uncommitted, to be delivered again.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

from services.indexer.config import IndexerConfig
from services.indexer.steps import index
from shared.errors import Unavailable
from shared.model import IngestRecord
from shared.ports import BlobStore, Delivery, MetaStore, Queue

log = logging.getLogger(__name__)

T = TypeVar("T")
# Called by the loop's own thread after every step with the deliveries it settled (0 for an empty
# poll) and how long it took: where metrics are taken (the Kafka consumer is not thread-safe).
OnStep = Callable[[int, float], None]


class Stopped(Exception):
    """The worker was asked to stop while it waited to retry."""


@dataclass
class Counts:
    steps: int = 0
    batches: int = 0
    indexed: int = 0
    dead_lettered: int = 0
    retries: int = 0


class Indexer:
    def __init__(self, queue: Queue, blobs: BlobStore, meta: MetaStore, cfg: IndexerConfig | None = None,
                 *, on_step: OnStep | None = None) -> None:
        self.queue = queue
        self.blobs = blobs
        self.meta = meta
        self.cfg = cfg or IndexerConfig()
        self.on_step = on_step
        self.counts = Counts()
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Finish the batch in hand, commit it, then leave `run`."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self) -> None:
        """Index until `stop()`; then close the queue (uncommitted deliveries go back)."""
        log.info("indexer: consuming (batches of up to %d)", self.cfg.batch_size)
        try:
            while not self.stopping:
                try:
                    self.step()
                except Stopped:
                    break
                self._touch_health()
        finally:
            self.queue.close()
            log.info("indexer: stopped after %d batches, %d indexed, %d dead-lettered",
                     self.counts.batches, self.counts.indexed, self.counts.dead_lettered)

    def step(self) -> int:
        """One batch, start to commit; returns how many deliveries it settled."""
        started = time.monotonic()
        settled = self._step()
        self.counts.steps += 1
        if self.on_step is not None:
            self.on_step(settled, time.monotonic() - started)
        return settled

    def _step(self) -> int:
        deliveries = self._retrying("poll", lambda: self.queue.poll(self.cfg.batch_size, self.cfg.poll_timeout))
        if not deliveries:
            return 0
        good: list[Delivery] = []
        for d in deliveries:
            if d.record is None:
                self._dead_letter(d, d.problem or "undecodable record")
            else:
                good.append(d)
        if good:
            indexed = self._retrying("index", lambda: self._index(good))
            self._retrying("commit", lambda: self.queue.commit(indexed))
            self.counts.indexed += len(indexed)
        self.counts.batches += 1
        return len(deliveries)

    def _index(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """Store the batch; if a store refuses it for good, find the records at fault one by
        one and dead-letter them. Returns the deliveries that are now indexed."""
        records = [d.record for d in deliveries if d.record is not None]
        try:
            self._store(records)
            return list(deliveries)
        except Unavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - any refusal: look for the culprits below
            log.warning("batch of %d refused (%s), indexing one by one", len(records), exc)
        indexed = []
        for d in deliveries:
            try:
                self._store([d.record] if d.record is not None else [])
            except Unavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - this record can never be indexed
                self._dead_letter(d, f"{type(exc).__name__}: {exc}")
            else:
                indexed.append(d)
        return indexed

    def _store(self, records: Sequence[IngestRecord]) -> None:
        index(records, self.blobs, self.meta)

    def _dead_letter(self, d: Delivery, reason: str) -> None:
        what = d.record.id if d.record is not None else "undecodable record"
        log.warning("dead-lettering %s: %s", what, reason)
        self._retrying("dead-letter", lambda: self.queue.dead_letter(d, reason))
        self.counts.dead_lettered += 1

    def _retrying(self, what: str, action: Callable[[], T]) -> T:
        """`action()` until it does not raise `Unavailable`, backing off; `Stopped` on stop."""
        delay = self.cfg.backoff_initial
        while True:
            try:
                return action()
            except Unavailable as exc:
                if self.stopping:
                    raise Stopped() from exc
                self.counts.retries += 1
                log.warning("%s: %s; retrying in %.1fs", what, exc, delay)
                if self._stopping.wait(delay):
                    raise Stopped() from exc
                delay = min(delay * 2, self.cfg.backoff_max)

    def _touch_health(self) -> None:
        path = self.cfg.health_file
        if path is not None:
            path.touch()
