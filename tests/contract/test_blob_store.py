"""The BlobStore contract."""
from __future__ import annotations

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
