"""Group commit for the embedded collector: one writer thread stores what concurrent uploads hand it.

SQLite takes one writer at a time and every commit waits for an fsync, so sixteen uploads that
each commit on their own wait for each other in turn. Here each upload queues its record and
waits; the writer takes everything queued (up to `max_batch`), stores it in one `write` (one
transaction), and only then wakes each waiter, so a 200 still means blob and row are durable.
A failed batch is written again one record at a time, so each waiter gets its own outcome and a
bad record does not fail the others. A caller that gathers its own batches (the native server's
upload thread, which takes every upload that arrived while it wrote the last batch) writes them
with `write_now` on its own thread, in turn with the writer's batches.
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Callable, Generic, Sequence, TypeVar

from shared.errors import Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
Write = Callable[[Sequence[T]], None]

MAX_BATCH = 64


Then = Callable[[BaseException | None], None]


class _Pending(Generic[T]):
    __slots__ = ("item", "done", "error", "then")

    def __init__(self, item: T, then: Then | None = None) -> None:
        self.item = item
        self.then = then
        self.done = threading.Event() if then is None else None
        self.error: BaseException | None = None

    def finish(self, error: BaseException | None = None) -> None:
        if self.then is not None:
            try:
                self.then(error)
            except Exception:  # noqa: BLE001 - the other items of the batch are still to be told
                log.exception("a group commit callback failed")
            return
        self.error = error
        assert self.done is not None
        self.done.set()


_STOP = object()


class GroupCommit(Generic[T]):
    """Calls `write(batch)` on one thread for items submitted from many; `submit` returns once its
    item's batch is written, or raises that item's error. `write_now` writes a caller's batch on
    the caller's thread."""

    def __init__(self, write: Write[T], *, max_batch: int = MAX_BATCH, name: str = "group-commit") -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        self._write = write
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closing = threading.Lock()
        self._closed = False
        self._writing = threading.Lock()  # one batch at a time: the writer thread's or a write_now
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> None:
        pending = _Pending(item)
        self._put(pending)
        assert pending.done is not None
        pending.done.wait()
        if pending.error is not None:
            raise pending.error

    def write_now(self, items: Sequence[tuple[T, Then]]) -> None:
        """Write the items as one batch on this thread, never at the same time as another batch,
        then call each one's `then(error)` in order (None once written, or the error that stopped
        it; a failed batch is written again one item at a time, as the writer's are). Raises
        Unavailable, calling none of them, when closed."""
        with self._writing:
            self._refuse_if_closed()
            self._write_batch([_Pending(item, then) for item, then in items])

    def _put(self, pending: _Pending[T]) -> None:
        with self._closing:
            self._refuse_if_closed()
            self._queue.put(pending)

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise Unavailable("the collector is stopping: not accepting writes", retry_after=1)

    def close(self, timeout: float | None = None) -> None:
        """Refuse new items, write every item already submitted, then end the thread; a write_now
        under way is finished first, a later one refused."""
        with self._closing:
            if self._closed:
                return
            with self._writing:
                self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[_Pending[T]] = []
            first = self._queue.get()
            if first is _STOP:
                return
            batch.append(first)
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stopping = True  # nothing is queued after the stop marker: this batch is the last
                    break
                batch.append(more)
            with self._writing:
                self._write_batch(batch)
        # A stop marker taken mid-batch: the queue is empty behind it (submit refuses once closed).

    def _write_batch(self, batch: list[_Pending[T]]) -> None:
        try:
            self._write([p.item for p in batch])
        except BaseException as exc:  # noqa: BLE001 - every waiter must be woken, whatever happened
            if len(batch) == 1:
                batch[0].finish(exc)
                return
            log.warning("writing a batch of %d failed (%s); writing them one by one", len(batch), exc)
            for pending in batch:
                try:
                    self._write([pending.item])
                except BaseException as one:  # noqa: BLE001
                    pending.finish(one)
                else:
                    pending.finish()
            return
        for pending in batch:
            pending.finish()
