"""The indexer's work on a batch of records: the one function every deployment indexes with.

Blobs first, then every metadata row in one transaction: a row is only visible once its bytes are
stored, and since both are keyed by the profile id, doing a batch twice changes nothing. The caller
commits the batch (queue offsets) only after `index` returns.
"""
from __future__ import annotations

from typing import Sequence

from shared.model import IngestRecord, blob_key
from shared.ports import BlobStore, MetaStore


def index(records: Sequence[IngestRecord], blobs: BlobStore, meta: MetaStore) -> None:
    """Make `records` durable and findable; safe to repeat after a crash or a redelivery."""
    if not records:
        return
    blobs.put_many([(blob_key(record.id), record.body) for record in records])
    meta.put([record.meta() for record in records])
