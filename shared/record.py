"""`IngestRecord` <-> the bytes of one Kafka message (`shared/record.proto`).

`decode` checks what it reads as strictly as the ingest API checked the upload's parameters, so a
message that was not written by `encode` (or was damaged) is an `UndecodableRecord` with the
reason, which the indexer sends to the dead-letter topic instead of indexing it.
"""
from __future__ import annotations

from google.protobuf.message import DecodeError

from shared.errors import ProfefeError
from shared.model import IngestRecord, Label, Labels, ProfileType, from_unix, is_id
from shared.record_pb2 import IngestRecord as IngestRecordPb


class UndecodableRecord(ProfefeError):
    """Queue bytes that are not a valid `IngestRecord`; str(e) says why."""


# Seconds in 0001-01-01 .. 9999-12-31, what a Python datetime can hold.
_MIN_UNIX = -62_135_596_800
_MAX_UNIX = 253_402_300_799


def encode(record: IngestRecord) -> bytes:
    msg = IngestRecordPb(
        id=record.id,
        service=record.service,
        type=record.type.value,
        created_at_unix=int(record.created_at.timestamp()),
        received_at_unix=int(record.received_at.timestamp()),
        body=record.body,
        signature=record.signature,
        totals=record.totals,
    )
    for lb in record.labels:
        msg.labels.add(key=lb.key, value=lb.value)
    return msg.SerializeToString()


def decode(data: bytes) -> IngestRecord:
    """The record in `data`; `UndecodableRecord` when it is not one."""
    msg = IngestRecordPb()
    try:
        msg.ParseFromString(data)
    except (DecodeError, ValueError) as exc:
        raise UndecodableRecord(f"not a protobuf IngestRecord: {exc}") from None
    if not is_id(msg.id):
        raise UndecodableRecord(f"bad profile id {msg.id!r}")
    if not msg.service:
        raise UndecodableRecord("no service")
    try:
        ptype = ProfileType(msg.type)
    except ValueError:
        raise UndecodableRecord(f"unknown profile type {msg.type!r}") from None
    for name in ("created_at_unix", "received_at_unix"):
        if not _MIN_UNIX <= getattr(msg, name) <= _MAX_UNIX:
            raise UndecodableRecord(f"{name} {getattr(msg, name)} is out of range")
    return IngestRecord(
        id=msg.id,
        service=msg.service,
        type=ptype,
        # Kept in the order they were written: the ingest API already sorted them.
        labels=Labels(tuple(Label(lb.key, lb.value) for lb in msg.labels)),
        created_at=from_unix(msg.created_at_unix),
        received_at=from_unix(msg.received_at_unix),
        body=msg.body,
        signature=msg.signature,
        totals=tuple(msg.totals),
    )
