"""The Kafka record: what `encode` writes, `decode` reads back whole; anything else is refused."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from shared.model import IngestRecord, Labels, ProfileType, new_id
from shared.record import UndecodableRecord, decode, encode
from shared.record_pb2 import IngestRecord as IngestRecordPb

T0 = datetime(2026, 1, 1, 21, 14, 5, tzinfo=timezone.utc)


def record(**changes) -> IngestRecord:
    fields = dict(
        id=new_id(T0.timestamp()), service="svc", type=ProfileType.HEAP,
        labels=Labels.parse("z=1,a=2,a=1,empty="), created_at=T0, received_at=T0.replace(second=9),
        body=b"\x1f\x8b" + bytes(range(256)), signature="alloc_objects/count",
    )
    fields.update(changes)
    return IngestRecord(**fields)


@pytest.mark.parametrize("r", [
    record(),
    record(type=ProfileType.TRACE, signature="", labels=Labels(), body=b"go 1.22 trace\x00"),
    record(service="ünïcode service", labels=Labels.parse("k=v%2Cw")),
    record(created_at=datetime(1970, 1, 1, tzinfo=timezone.utc)),
])
def test_round_trip(r):
    assert decode(encode(r)) == r


def test_labels_keep_their_order_and_duplicates():
    r = record(labels=Labels.parse("b=2,a=1,b=1"))
    assert [(lb.key, lb.value) for lb in decode(encode(r)).labels] == [("a", "1"), ("b", "2"), ("b", "1")]


def test_times_are_whole_seconds():
    msg = IngestRecordPb.FromString(encode(record()))
    assert (msg.created_at_unix, msg.received_at_unix) == (int(T0.timestamp()), int(T0.timestamp()) + 4)


@pytest.mark.parametrize("data, reason", [
    (b"\xff\xff\xff", "not a protobuf IngestRecord"),
    (b"", "bad profile id"),
    (IngestRecordPb(id="x" * 20, service="s", type="cpu").SerializeToString(), "bad profile id"),
    (IngestRecordPb(id=new_id(), type="cpu").SerializeToString(), "no service"),
    (IngestRecordPb(id=new_id(), service="s", type="flame").SerializeToString(), "unknown profile type"),
    (IngestRecordPb(id=new_id(), service="s", type="cpu", created_at_unix=1 << 62).SerializeToString(),
     "created_at_unix"),
], ids=["garbage", "empty", "short id", "no service", "unknown type", "time out of range"])
def test_what_is_not_a_record_is_refused_with_the_reason(data, reason):
    with pytest.raises(UndecodableRecord, match=reason):
        decode(data)
