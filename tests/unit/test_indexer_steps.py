"""The indexer step: blobs then rows, safe to repeat."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from services.indexer.steps import index
from shared.adapters.blobs_local import LocalBlobStore
from shared.adapters.meta_sql import SqlMetaStore, migrate, sqlite_url
from shared.model import IngestRecord, Labels, ProfileType, Query, blob_key, new_id

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def stores(tmp_path):
    url = sqlite_url(tmp_path / "m.db")
    migrate(url)
    meta = SqlMetaStore(url)
    yield LocalBlobStore(tmp_path / "b"), meta
    meta.close()


def rec(body=b"data"):
    return IngestRecord(new_id(), "svc", ProfileType.CPU, Labels.parse("a=1"), T0, T0, body, "samples/count")


def everything(meta):
    return meta.find(Query("svc", None, Labels(), T0, T0))


def test_index_stores_blob_and_row(stores):
    blobs, meta = stores
    r = rec()
    index([r], blobs, meta)
    assert blobs.get(blob_key(r.id)) == b"data"
    assert everything(meta) == [r.meta()]


def test_redelivery_is_harmless(stores):
    blobs, meta = stores
    batch = [rec(b"one"), rec(b"two")]
    index(batch, blobs, meta)
    index(batch, blobs, meta)
    index(batch[1:], blobs, meta)
    assert everything(meta) == sorted((r.meta() for r in batch), key=lambda m: m.id)


class FailingMeta:
    def put(self, metas):
        raise RuntimeError("database went away")


def test_no_row_without_its_blob(stores, tmp_path):
    blobs, meta = stores
    r = rec()
    with pytest.raises(RuntimeError):
        index([r], blobs, FailingMeta())
    # The blob may exist without a row (harmless, rewritten on redelivery); never the reverse.
    assert blobs.get(blob_key(r.id)) == b"data"
    assert everything(meta) == []


def test_nothing_to_do(stores):
    index([], *stores)


def test_index_stores_every_blob_and_row_once(stores):
    blobs, meta = stores
    records = [rec(b"one"), rec(b"two")]
    index(records, blobs, meta)
    index(records, blobs, meta)  # a repeat changes nothing
    assert [blobs.get(blob_key(r.id)) for r in records] == [b"one", b"two"]
    assert sorted(m.id for m in everything(meta)) == sorted(r.id for r in records)
