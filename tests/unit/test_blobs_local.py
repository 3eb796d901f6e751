"""What only the local blob folder promises: keys cannot escape the root, writes leave no debris."""
from __future__ import annotations

import pytest

from shared.adapters.blobs_local import LocalBlobStore
from shared.errors import Unavailable


@pytest.mark.parametrize("key", ["../x", "profiles/../../x", "/etc/passwd", "", "a//b", ".hidden", "a/./b", "a\\b"])
def test_keys_cannot_escape(tmp_path, key):
    store = LocalBlobStore(tmp_path / "root")
    with pytest.raises(ValueError, match="invalid blob key"):
        store.put(key, b"x")
    with pytest.raises(ValueError):
        store.get(key)
    assert not (tmp_path / "x").exists()


def test_writes_leave_only_the_blob(tmp_path):
    store = LocalBlobStore(tmp_path)
    for i in range(3):
        store.put("profiles/abc", b"v%d" % i)
    assert sorted(p.name for p in (tmp_path / "profiles").iterdir()) == ["abc"]


def test_ping_on_a_missing_root(tmp_path):
    store = LocalBlobStore(tmp_path / "root")
    (tmp_path / "root").rmdir()
    with pytest.raises(Unavailable):
        store.ping()


def test_put_many_stores_every_blob_and_leaves_no_debris(tmp_path):
    store = LocalBlobStore(tmp_path)
    store.put_many([("profiles/a", b"1"), ("profiles/b", b"2"), ("other/c", b"3")])
    assert [store.get(k) for k in ("profiles/a", "profiles/b", "other/c")] == [b"1", b"2", b"3"]
    assert sorted(p.name for p in (tmp_path / "profiles").iterdir()) == ["a", "b"]


def test_put_many_checks_every_key_before_writing(tmp_path):
    store = LocalBlobStore(tmp_path)
    with pytest.raises(ValueError, match="invalid blob key"):
        store.put_many([("profiles/a", b"1"), ("../x", b"2")])
    assert not (tmp_path / "profiles").exists()
