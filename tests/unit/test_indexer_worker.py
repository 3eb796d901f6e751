"""The indexer loop over the in-memory queue and local stores: commit after the work, dead letters,
retries without skipping, and stop after the batch in hand."""
from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from services.indexer.config import IndexerConfig
from services.indexer.worker import Indexer
from shared.adapters.blobs_local import LocalBlobStore
from shared.adapters.meta_sql import SqlMetaStore, migrate, sqlite_url
from shared.adapters.queue_memory import MemoryQueue, MemoryTopic
from shared.errors import Unavailable
from shared.model import IngestRecord, Labels, ProfileType, Query, blob_key, new_id
from shared.ports import Delivery

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
FAST = IndexerConfig(batch_size=10, poll_timeout=0.05, backoff_initial=0.01, backoff_max=0.02)


def rec(service="svc", body=b"data"):
    return IngestRecord(new_id(), service, ProfileType.CPU, Labels.parse("a=1"), T0, T0, body, "samples/count")


class Flaky:
    """A store that answers `Unavailable` for its first `failures` calls of `method`."""

    def __init__(self, inner, method: str, failures: int):
        self.inner, self.method, self.failures, self.calls = inner, method, failures, 0

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name != self.method:
            return attr

        def call(*args, **kwargs):
            self.calls += 1
            if self.calls <= self.failures:
                raise Unavailable(f"{name} is down")
            return attr(*args, **kwargs)

        return call


class Refusing:
    """A metadata store that refuses one service for good (as a database refuses a bad row)."""

    def __init__(self, inner, service: str):
        self.inner, self.service = inner, service

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def put(self, metas):
        if any(m.service == self.service for m in metas):
            raise ValueError(f"service {self.service!r} refused")
        self.inner.put(metas)


class UndecodableQueue(MemoryQueue):
    """Hands out its first delivery as a message that did not decode."""

    def poll(self, max_records, timeout):
        out = super().poll(max_records, timeout)
        if out and not getattr(self, "_spoiled", False):
            self._spoiled = True
            out[0] = Delivery(None, out[0].token, problem="not a protobuf IngestRecord")
        return out

    def dead_letter(self, delivery, reason):
        # The memory queue keeps the record it handed out; keep the spoiled delivery's token.
        super().dead_letter(Delivery(self._in_flight.get(delivery.token), delivery.token), reason)


@pytest.fixture
def stores(tmp_path):
    url = sqlite_url(tmp_path / "m.db")
    migrate(url)
    meta = SqlMetaStore(url)
    yield LocalBlobStore(tmp_path / "b"), meta
    meta.close()


def ids(meta, service="svc"):
    return {m.id for m in meta.find(Query(service, None, Labels(), T0, T0))}


def test_a_batch_is_stored_then_committed(stores):
    blobs, meta = stores
    topic = MemoryTopic()
    sent = [rec() for _ in range(25)]
    for r in sent:
        MemoryQueue(topic).publish(r, timeout=1)
    worker = Indexer(MemoryQueue(topic), blobs, meta, FAST)
    while worker.step():
        pass
    assert ids(meta) == {r.id for r in sent}
    assert all(blobs.get(blob_key(r.id)) == r.body for r in sent)
    worker.queue.close()
    assert MemoryQueue(topic).poll(10, 0.01) == []  # all committed, nothing given back


def test_stores_down_are_retried_on_the_same_batch(stores):
    blobs, meta = stores
    topic = MemoryTopic()
    r = rec()
    MemoryQueue(topic).publish(r, timeout=1)
    flaky_blobs, flaky_meta = Flaky(blobs, "put_many", 2), Flaky(meta, "put", 3)
    worker = Indexer(MemoryQueue(topic), flaky_blobs, flaky_meta, FAST)
    assert worker.step() == 1
    assert ids(meta) == {r.id}
    assert worker.counts.retries == 5 and worker.counts.indexed == 1


def test_a_refused_record_is_dead_lettered_and_the_rest_indexed(stores):
    blobs, meta = stores
    topic = MemoryTopic()
    good, bad = rec(), rec(service="refused")
    for r in (good, bad):
        MemoryQueue(topic).publish(r, timeout=1)
    worker = Indexer(MemoryQueue(topic), blobs, Refusing(meta, "refused"), FAST)
    assert worker.step() == 2
    assert ids(meta) == {good.id}
    [(record, reason)] = topic.dead_letters
    assert record.id == bad.id and "refused" in reason


def test_an_undecodable_message_is_dead_lettered_with_its_problem(stores):
    blobs, meta = stores
    topic = MemoryTopic()
    first, second = rec(), rec()
    for r in (first, second):
        MemoryQueue(topic).publish(r, timeout=1)
    worker = Indexer(UndecodableQueue(topic), blobs, meta, FAST)
    assert worker.step() == 2
    assert ids(meta) == {second.id}
    assert [reason for _, reason in topic.dead_letters] == ["not a protobuf IngestRecord"]


def test_stop_while_stores_are_down_leaves_the_batch_uncommitted(stores):
    blobs, meta = stores
    topic = MemoryTopic()
    r = rec()
    MemoryQueue(topic).publish(r, timeout=1)
    worker = Indexer(MemoryQueue(topic), blobs, Flaky(meta, "put", 10**9), FAST)
    runner = threading.Thread(target=worker.run)
    runner.start()
    while worker.counts.retries < 3:
        threading.Event().wait(0.01)
    worker.stop()
    runner.join(timeout=10)
    assert not runner.is_alive()
    assert ids(meta) == set()
    [again] = MemoryQueue(topic).poll(10, 0.1)  # given back, to be indexed by the next consumer
    assert again.record == r


def test_stop_finishes_the_batch_in_hand(stores):
    blobs, meta = stores
    topic = MemoryTopic()
    sent = [rec() for _ in range(5)]
    for r in sent:
        MemoryQueue(topic).publish(r, timeout=1)
    worker = Indexer(MemoryQueue(topic), blobs, meta, FAST)
    slow_meta_put = meta.put

    def put_then_stop(metas):
        worker.stop()  # a SIGTERM in the middle of the batch
        slow_meta_put(metas)

    meta.put = put_then_stop
    worker.run()
    assert ids(meta) == {r.id for r in sent}
    assert MemoryQueue(topic).poll(10, 0.01) == []
