"""The BlobStore contract."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.errors import NotFound
from shared.ports import BlobStore


def test_is_a_blob_store(blob_store):
    assert isinstance(blob_store, BlobStore)


def test_put_then_get(blob_store, ns):
    data = bytes(range(256)) * 17
    blob_store.put(f"profiles/{ns}", data)
    assert blob_store.get(f"profiles/{ns}") == data


def test_put_replaces(blob_store, ns):
    blob_store.put(f"profiles/{ns}", b"first")
    blob_store.put(f"profiles/{ns}", b"second")
    assert blob_store.get(f"profiles/{ns}") == b"second"


def test_empty_and_large_blobs(blob_store, ns):
    blob_store.put(f"profiles/{ns}-empty", b"")
    assert blob_store.get(f"profiles/{ns}-empty") == b""
    big = b"\x1f\x8b" + bytes(5 << 20)
    blob_store.put(f"profiles/{ns}-big", big)
    assert blob_store.get(f"profiles/{ns}-big") == big


def test_get_missing(blob_store, ns):
    with pytest.raises(NotFound):
        blob_store.get(f"profiles/{ns}")


def test_delete_is_idempotent(blob_store, ns):
    blob_store.put(f"profiles/{ns}", b"x")
    blob_store.delete(f"profiles/{ns}")
    blob_store.delete(f"profiles/{ns}")
    with pytest.raises(NotFound):
        blob_store.get(f"profiles/{ns}")


def test_keys_are_independent(blob_store, ns):
    blob_store.put(f"profiles/{ns}-a", b"a")
    blob_store.put(f"profiles/{ns}-b", b"b")
    blob_store.delete(f"profiles/{ns}-a")
    assert blob_store.get(f"profiles/{ns}-b") == b"b"


def test_ping(blob_store):
    blob_store.ping()


def test_list_names_every_key_under_a_prefix_with_its_write_time(blob_store, ns):
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    keys = {f"{ns}/a/one", f"{ns}/a/two", f"{ns}/a/deeper/three"}
    for key in keys | {f"{ns}/b/other", f"{ns}/ab"}:
        blob_store.put(key, b"x")
    listed = dict(blob_store.list(f"{ns}/a/"))
    assert set(listed) == keys
    after = datetime.now(timezone.utc) + timedelta(seconds=5)
    assert all(before <= t <= after and t.tzinfo is not None for t in listed.values())
    blob_store.delete(f"{ns}/a/one")
    assert set(dict(blob_store.list(f"{ns}/a/"))) == keys - {f"{ns}/a/one"}
    assert list(blob_store.list(f"{ns}/nothing/")) == []
