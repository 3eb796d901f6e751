"""The Queue contract: at-least-once, commit after the work, dead letters acknowledged."""
from __future__ import annotations

from datetime import datetime, timezone

from shared.model import IngestRecord, Labels, ProfileType, new_id
from shared.ports import Queue

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def record(service="svc", body=b"\x1f\x8b profile", labels="a=1,b=2,b=3"):
    return IngestRecord(
        id=new_id(), service=service, type=ProfileType.CPU, labels=Labels.parse(labels),
        created_at=T0, received_at=T0, body=body, signature="samples/count,cpu/nanoseconds",
    )


def drain(q, want, timeout=5.0):
    got = []
    while len(got) < want:
        batch = q.poll(max_records=want - len(got), timeout=timeout)
        assert batch, f"got {len(got)} of {want} records"
        got.extend(batch)
    return got


def test_is_a_queue(queue_factory):
    assert isinstance(queue_factory(), Queue)


def test_publish_then_poll_keeps_the_record_whole(queue_factory):
    q = queue_factory()
    r = record(body=bytes(range(256)) * 100)
    q.publish(r, timeout=5)
    [d] = drain(q, 1)
    assert d.record == r and d.record.body == r.body


def test_order_and_batch_size(queue_factory):
    q = queue_factory()
    sent = [record() for _ in range(5)]
    for r in sent:
        q.publish(r, timeout=5)
    first = q.poll(max_records=2, timeout=5)
    assert 1 <= len(first) <= 2
    rest = drain(q, 5 - len(first))
    assert [d.record.id for d in first + rest] == [r.id for r in sent]


def test_poll_on_nothing_returns_empty(queue_factory):
    assert queue_factory().poll(max_records=10, timeout=0.05) == []


def test_committed_records_are_not_delivered_again(queue_factory):
    q = queue_factory()
    q.publish(record(), timeout=5)
    q.commit(drain(q, 1))
    q.close()
    # The next consumer must see the later record and only it: an empty poll alone would also pass
    # for a consumer that has not joined the group yet.
    later, after = queue_factory(), record()
    later.publish(after, timeout=5)
    assert [d.record.id for d in drain(later, 1)] == [after.id]
    assert later.poll(max_records=10, timeout=0.5) == []


def test_uncommitted_records_are_delivered_again(queue_factory):
    q = queue_factory()
    sent = [record() for _ in range(3)]
    for r in sent:
        q.publish(r, timeout=5)
    got = drain(q, 3)
    q.commit(got[:1])
    q.close()
    again = drain(queue_factory(), 2)
    assert [d.record.id for d in again] == [r.id for r in sent[1:]]


def test_dead_letter_acknowledges(queue_factory):
    q = queue_factory()
    bad, good = record(body=b"junk"), record()
    q.publish(bad, timeout=5)
    q.publish(good, timeout=5)
    first, second = drain(q, 2)
    q.dead_letter(first, "malformed profile (junk)")
    q.commit([second])
    q.close()
    assert queue_factory().poll(max_records=10, timeout=0.2) == []


def test_acknowledging_a_later_record_never_drops_an_earlier_one(queue_factory):
    q = queue_factory()
    first, second = record(), record()
    q.publish(first, timeout=5)
    q.publish(second, timeout=5)
    a, b = drain(q, 2)
    q.dead_letter(b, "refused")  # the earlier one is still being worked on when this happens
    q.close()  # ... and its consumer dies before acknowledging it
    again = drain(queue_factory(), 1)
    assert again[0].record.id == first.id  # redelivered (the later one may come back too)
