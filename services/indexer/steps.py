"""The indexer's work on a batch of records, as plain functions over the ports.

Blobs first, then every metadata row in one transaction: a row is only visible once its bytes are
stored, and since both are keyed by the profile id, doing a batch twice changes nothing. The caller
commits the batch (queue offsets) only after `index` returns.
"""
from __future__ import annotations

from typing import Protocol, Sequence

from shared.model import IngestRecord, blob_key
from shared.ports import BlobStore, MetaStore


class BatchBlobStore(Protocol):
    """A blob store that can make several blobs durable at once for less than one `put` each."""

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None: ...


def store_blobs(records: Sequence[IngestRecord], blobs: BlobStore) -> None:
    for record in records:
        blobs.put(blob_key(record.id), record.body)


def write_metadata(records: Sequence[IngestRecord], meta: MetaStore) -> None:
    meta.put([record.meta() for record in records])


def index(records: Sequence[IngestRecord], blobs: BlobStore, meta: MetaStore) -> None:
    """Make `records` durable and findable; safe to repeat after a crash or a redelivery."""
    if not records:
        return
    store_blobs(records, blobs)
    write_metadata(records, meta)


def index_at_once(records: Sequence[IngestRecord], blobs: BatchBlobStore, meta: MetaStore) -> None:
    """`index` over a blob store that syncs a whole batch of blobs together."""
    if not records:
        return
    blobs.put_many([(blob_key(record.id), record.body) for record in records])
    write_metadata(records, meta)
