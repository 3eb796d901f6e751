"""An in-process queue with the semantics of the Kafka one, for the unit and contract tests.

A `MemoryTopic` is the broker: an ordered log of records plus the dead letters. Any number of
`MemoryQueue` clients share it. Records are handed out once at a time; a consumer that closes
(or is dropped) without committing gives its deliveries back to the head of the log, so the next
poll by any consumer delivers them again: at-least-once, as with uncommitted Kafka offsets.
Nothing survives the process, so durability here means "held in memory".
"""
from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Sequence

from shared.errors import Unavailable
from shared.model import IngestRecord
from shared.ports import Delivery


@dataclass
class MemoryTopic:
    """The shared log. `dead_letters` keeps (record, reason) pairs for inspection."""

    max_records: int = 100_000
    pending: deque[tuple[int, IngestRecord]] = field(default_factory=deque)
    dead_letters: list[tuple[IngestRecord, str]] = field(default_factory=list)
    _seq: itertools.count = field(default_factory=itertools.count)
    _cond: threading.Condition = field(default_factory=threading.Condition)


class MemoryQueue:
    """`Queue` over a `MemoryTopic`: publish appends, poll takes, commit forgets, close gives back."""

    def __init__(self, topic: MemoryTopic | None = None) -> None:
        self.topic = topic if topic is not None else MemoryTopic()
        self._in_flight: dict[int, IngestRecord] = {}
        self._closed = False

    def publish(self, record: IngestRecord, timeout: float) -> None:
        t = self.topic
        with t._cond:
            self._check_open()
            deadline = time.monotonic() + timeout
            # Backpressure: a full log waits for consumers, then gives up as a dependency would.
            while len(t.pending) >= t.max_records:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Unavailable("queue is full", retry_after=1)
                t._cond.wait(left)
            t.pending.append((next(t._seq), record))
            t._cond.notify_all()

    def poll(self, max_records: int, timeout: float) -> list[Delivery]:
        t = self.topic
        with t._cond:
            self._check_open()
            deadline = time.monotonic() + timeout
            while not t.pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                t._cond.wait(left)
            out: list[Delivery] = []
            while t.pending and len(out) < max_records:
                seq, record = t.pending.popleft()
                self._in_flight[seq] = record
                out.append(Delivery(record, seq))
            t._cond.notify_all()
            return out

    def commit(self, deliveries: Sequence[Delivery]) -> None:
        with self.topic._cond:
            for d in deliveries:
                self._in_flight.pop(d.token, None)

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        with self.topic._cond:
            record = self._in_flight.pop(delivery.token, None)
            if record is not None:
                self.topic.dead_letters.append((record, reason))

    def lag(self) -> dict[int, int]:
        """Everything waiting, as one partition 0."""
        with self.topic._cond:
            return {0: len(self.topic.pending)}

    def ping(self) -> None:
        self._check_open()

    def close(self) -> None:
        t = self.topic
        with t._cond:
            if self._closed:
                return
            self._closed = True
            # Give back in their original order, ahead of anything newer.
            for seq in sorted(self._in_flight, reverse=True):
                t.pending.appendleft((seq, self._in_flight[seq]))
            self._in_flight.clear()
            t._cond.notify_all()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("queue client is closed")
