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


def test_get_many_gives_every_blob_in_the_order_asked(blob_store, ns):
    # More keys than any store reads ahead, with sizes that finish their reads out of order.
    items = [(f"profiles/{ns}-{i:02d}", bytes([i]) * (i * 7919 % 50_000)) for i in range(40)]
    blob_store.put_many(items)
    keys = [k for k, _ in reversed(items)] + [items[3][0]]
    assert list(blob_store.get_many(keys)) == [dict(items)[k] for k in keys]
    assert list(blob_store.get_many([])) == []
    assert list(blob_store.get_many(keys[:1])) == [dict(items)[keys[0]]]


def test_get_many_raises_not_found_where_a_key_is_missing(blob_store, ns):
    blob_store.put_many([(f"profiles/{ns}-{i}", b"%d" % i) for i in range(12)])
    keys = [f"profiles/{ns}-{i}" for i in range(12)]
    keys.insert(5, f"profiles/{ns}-gone")
    got = []
    with pytest.raises(NotFound):
        for data in blob_store.get_many(keys):
            got.append(data)
    assert got == [b"%d" % i for i in range(5)]


def test_get_many_stopped_early_leaves_the_store_usable(blob_store, ns):
    blob_store.put_many([(f"profiles/{ns}-{i}", b"%d" % i) for i in range(30)])
    reads = blob_store.get_many([f"profiles/{ns}-{i}" for i in range(30)])
    assert next(reads) == b"0"
    reads.close()
    assert list(blob_store.get_many([f"profiles/{ns}-29", f"profiles/{ns}-0"])) == [b"29", b"0"]


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


def test_put_and_put_many_replace_each_other(blob_store, ns):
    key = f"profiles/{ns}"
    blob_store.put_many([(key, b"batched"), (f"{key}-other", b"o")])
    blob_store.put(key, b"single")
    assert blob_store.get(key) == b"single"
    blob_store.put_many([(key, b"batched again")])
    assert blob_store.get(key) == b"batched again"
    assert list(blob_store.get_many([key, f"{key}-other"])) == [b"batched again", b"o"]
    blob_store.delete(key)
    with pytest.raises(NotFound):
        blob_store.get(key)
    assert blob_store.get(f"{key}-other") == b"o"


def test_list_and_delete_see_a_batch(blob_store, ns):
    blob_store.put_many([(f"{ns}/a/one", b"1"), (f"{ns}/a/two", b"2"), (f"{ns}/b/three", b"3")])
    blob_store.put(f"{ns}/a/four", b"4")
    assert set(dict(blob_store.list(f"{ns}/a/"))) == {f"{ns}/a/one", f"{ns}/a/two", f"{ns}/a/four"}
    blob_store.delete(f"{ns}/a/one")
    assert set(dict(blob_store.list(f"{ns}/a/"))) == {f"{ns}/a/two", f"{ns}/a/four"}
    blob_store.put_many([])
    assert blob_store.get(f"{ns}/b/three") == b"3"
