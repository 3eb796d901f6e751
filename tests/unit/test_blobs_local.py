"""What only the local blob folder promises: keys cannot escape the root, writes leave no debris,
the packs are shared by processes, emptied packs go, and a crash is mended at the next start."""
from __future__ import annotations

import errno
import multiprocessing
import os
import shutil
import sqlite3

import pytest

from shared.adapters import blob_packs
from shared.adapters.blobs_local import LocalBlobStore
from shared.errors import InsufficientStorage, NotFound, Unavailable


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
    shutil.rmtree(tmp_path / "root")
    with pytest.raises(Unavailable):
        store.ping()


def test_put_many_appends_one_pack_and_leaves_no_debris(tmp_path):
    store = LocalBlobStore(tmp_path)
    store.put_many([("profiles/a", b"1"), ("profiles/b", b"2"), ("other/c", b"3")])
    store.put_many([("profiles/d", b"4")])
    assert [store.get(k) for k in ("profiles/a", "profiles/b", "other/c", "profiles/d")] == [b"1", b"2", b"3", b"4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".packs"]
    assert len(_packs(tmp_path)) == 1


def test_put_many_checks_every_key_before_writing(tmp_path):
    store = LocalBlobStore(tmp_path)
    with pytest.raises(ValueError, match="invalid blob key"):
        store.put_many([("profiles/a", b"1"), ("../x", b"2")])
    assert not (tmp_path / "profiles").exists()


def _packs(root) -> list:
    return sorted((root / ".packs").glob("*.pack"))


def _index(root) -> sqlite3.Connection:
    return sqlite3.connect(root / ".packs" / "index.db")


def test_another_process_reads_and_deletes_what_one_appended(tmp_path):
    # Two stores on one folder are two processes of `serve --workers 2`: each appends to a pack of its own.
    one, two = LocalBlobStore(tmp_path), LocalBlobStore(tmp_path)
    one.put_many([("profiles/a", b"1"), ("profiles/b", b"2")])
    two.put_many([("profiles/c", b"3")])
    assert list(two.get_many(["profiles/a", "profiles/b"])) == [b"1", b"2"]
    assert one.get("profiles/c") == b"3"
    assert len(_packs(tmp_path)) == 2
    two.delete("profiles/a")
    with pytest.raises(NotFound):
        one.get("profiles/a")
    assert set(dict(one.list("profiles/"))) == {"profiles/b", "profiles/c"}


def test_a_forked_child_appends_to_a_pack_of_its_own(tmp_path):
    store = LocalBlobStore(tmp_path)
    store.put_many([("profiles/parent", b"p")])
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=lambda: store.put_many([("profiles/child", b"c")]))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    store.put_many([("profiles/parent2", b"q")])
    assert list(store.get_many(["profiles/parent", "profiles/child", "profiles/parent2"])) == [b"p", b"c", b"q"]
    assert len(_packs(tmp_path)) == 2


def test_a_full_pack_is_sealed_and_deleted_once_its_last_blob_goes(tmp_path, monkeypatch):
    monkeypatch.setattr(blob_packs, "PACK_BYTES", 1000)
    store = LocalBlobStore(tmp_path)
    store.put_many([("profiles/a", b"x" * 600), ("profiles/b", b"y" * 600)])  # one batch: never split
    store.put_many([("profiles/c", b"z" * 10)])
    first, second = _packs(tmp_path)
    store.delete("profiles/a")
    assert first.exists()
    store.delete("profiles/b")
    assert _packs(tmp_path) == [second]  # the open pack stays, the sealed empty one went
    store.delete("profiles/c")
    assert _packs(tmp_path) == [second]
    store.close()  # sealed on close; emptied already, so deleted at the next start
    assert LocalBlobStore(tmp_path).recover() == 0
    assert _packs(tmp_path) == []


def test_a_replaced_blob_frees_its_sealed_pack(tmp_path, monkeypatch):
    monkeypatch.setattr(blob_packs, "PACK_BYTES", 100)
    store = LocalBlobStore(tmp_path)
    store.put_many([("profiles/a", b"x" * 200)])
    store.put_many([("profiles/a", b"y" * 200)])
    assert store.get("profiles/a") == b"y" * 200
    assert len(_packs(tmp_path)) == 1


def test_recover_indexes_what_a_crash_kept_out_of_the_index_and_cuts_a_torn_record(tmp_path):
    store = LocalBlobStore(tmp_path)
    store.put_many([("profiles/kept", b"k")])
    store.put_many([("profiles/late", b"late bytes")])
    (pack,) = _packs(tmp_path)
    size = pack.stat().st_size
    with _index(tmp_path) as db:  # the second batch's index commit lost with the power
        db.execute("DELETE FROM blobs WHERE key = 'profiles/late'")
        db.execute("UPDATE packs SET indexed_to = ?", (size - (18 + len("profiles/late") + len(b"late bytes")),))
    with open(pack, "ab") as f:
        f.write(b"PFP1\x05\x00")  # a record cut short mid-header
    with pytest.raises(NotFound):
        store.get("profiles/late")
    fresh = LocalBlobStore(tmp_path)
    assert fresh.recover() == 1
    assert pack.stat().st_size == size
    assert list(fresh.get_many(["profiles/kept", "profiles/late"])) == [b"k", b"late bytes"]
    fresh.put_many([("profiles/after", b"a")])
    assert fresh.get("profiles/after") == b"a" and len(_packs(tmp_path)) == 2


def test_recover_keeps_a_deleted_blob_deleted(tmp_path):
    store = LocalBlobStore(tmp_path)
    store.put_many([("profiles/a", b"1"), ("profiles/b", b"2")])
    store.delete("profiles/b")
    assert LocalBlobStore(tmp_path).recover() == 0
    with pytest.raises(NotFound):
        store.get("profiles/b")
    assert store.get("profiles/a") == b"1"


def test_recover_forgets_a_pack_that_is_gone(tmp_path):
    store = LocalBlobStore(tmp_path)
    store.put_many([("profiles/a", b"1")])
    _packs(tmp_path)[0].unlink()
    with pytest.raises(NotFound):
        store.get("profiles/a")
    LocalBlobStore(tmp_path).recover()
    assert list(store.list("profiles/")) == []


def test_a_failed_append_leaves_nothing_behind(tmp_path, monkeypatch):
    store = LocalBlobStore(tmp_path)
    store.put_many([("profiles/a", b"1")])
    (pack,) = _packs(tmp_path)
    size = pack.stat().st_size

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(blob_packs.os, "fsync", full)
    with pytest.raises(InsufficientStorage, match="No space left"):
        store.put_many([("profiles/b", b"2" * 1000)])
    monkeypatch.undo()
    assert pack.stat().st_size == size
    with pytest.raises(NotFound):
        store.get("profiles/b")
    store.put_many([("profiles/c", b"3")])
    assert LocalBlobStore(tmp_path).recover() == 0
    assert store.get("profiles/c") == b"3"


def test_blobs_written_as_files_by_earlier_versions_are_read_listed_and_deleted(tmp_path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "old").write_bytes(b"from a file")
    store = LocalBlobStore(tmp_path)
    store.put_many([("profiles/new", b"packed")])
    assert list(store.get_many(["profiles/old", "profiles/new"])) == [b"from a file", b"packed"]
    assert set(dict(store.list("profiles/"))) == {"profiles/old", "profiles/new"}
    store.delete("profiles/old")
    assert not (tmp_path / "profiles" / "old").exists()
    assert set(dict(store.list("profiles/"))) == {"profiles/new"}


def test_an_append_survives_short_writes(tmp_path, monkeypatch):
    store = LocalBlobStore(tmp_path)
    real = os.writev

    def short(fd, views):  # at most 1,000 bytes a call, as a signal or a full pipe may leave it
        return real(fd, [bytes(views[0][:1000])])

    monkeypatch.setattr(blob_packs.os, "writev", short)
    items = [(f"profiles/{i}", bytes([i]) * (i * 997)) for i in range(1, 8)] + [("profiles/empty", b"")]
    store.put_many(items)
    monkeypatch.undo()
    assert list(store.get_many([k for k, _ in items])) == [v for _, v in items]
    assert LocalBlobStore(tmp_path).recover() == 0


def test_a_pack_that_cannot_be_sealed_on_close_is_sealed_at_the_next_start(tmp_path, monkeypatch, caplog):
    store = LocalBlobStore(tmp_path)
    store.put_many([("profiles/a", b"1")])

    def full(_db, _packs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(blob_packs, "_drop_empty", full)
    store.close()  # logs, does not raise: the collector is stopping
    monkeypatch.undo()
    assert "could not seal pack" in caplog.text
    with _index(tmp_path) as db:
        assert db.execute("SELECT sealed FROM packs").fetchall() == [(0,)]
    again = LocalBlobStore(tmp_path)
    assert again.recover() == 0
    with _index(tmp_path) as db:
        assert db.execute("SELECT sealed FROM packs").fetchall() == [(1,)]
    assert again.get("profiles/a") == b"1"


def _live(root) -> dict[str, int]:
    with _index(root) as db:
        return {name: live for name, live in db.execute("SELECT name, live FROM packs")}


def _mostly_dead_pack(root, monkeypatch) -> tuple[LocalBlobStore, str]:
    """A store whose first, sealed pack keeps 2 of its 10 blobs (a service kept longer than the
    rest); its second pack is open."""
    monkeypatch.setattr(blob_packs, "PACK_BYTES", 4300)  # the ten blobs fill the first pack
    store = LocalBlobStore(root)
    store.put_many([(f"profiles/{i}", bytes([i]) * 400) for i in range(10)])
    store.put_many([("profiles/new", b"n" * 100)])
    for i in range(2, 10):
        store.delete(f"profiles/{i}")
    return store, _packs(root)[0].name


def test_reclaim_moves_the_live_blobs_of_a_mostly_dead_pack_and_deletes_it(tmp_path, monkeypatch):
    store, first = _mostly_dead_pack(tmp_path, monkeypatch)
    written = dict(store.list("profiles/"))
    size = (tmp_path / ".packs" / first).stat().st_size
    assert _live(tmp_path)[first] == 800
    assert store.reclaim() == (1, size)
    assert first not in {p.name for p in _packs(tmp_path)}
    assert list(store.get_many(["profiles/0", "profiles/1", "profiles/new"])) == [b"\0" * 400, b"\1" * 400, b"n" * 100]
    assert dict(store.list("profiles/")) == written  # a move is not a new write: retention sees the same times
    (second,) = _packs(tmp_path)
    assert _live(tmp_path) == {second.name: 900}
    assert store.reclaim() == (0, 0)  # the open pack is never copied
    store.close()
    fresh = LocalBlobStore(tmp_path)
    assert fresh.recover() == 0  # the copies were indexed: nothing to re-read, nothing lost
    assert fresh.get("profiles/1") == b"\1" * 400 and _live(tmp_path) == {second.name: 900}


def test_a_pack_half_live_or_more_is_left_as_it_is(tmp_path, monkeypatch):
    monkeypatch.setattr(blob_packs, "PACK_BYTES", 4300)
    store = LocalBlobStore(tmp_path)
    store.put_many([(f"profiles/{i}", b"x" * 400) for i in range(10)])
    store.put_many([("profiles/new", b"n")])
    for i in range(4):
        store.delete(f"profiles/{i}")
    before = _packs(tmp_path)
    assert store.reclaim() == (0, 0)
    assert _packs(tmp_path) == before


def test_a_blob_deleted_or_replaced_while_its_pack_is_reclaimed_stays_so(tmp_path, monkeypatch):
    store, first = _mostly_dead_pack(tmp_path, monkeypatch)
    other = LocalBlobStore(tmp_path)  # another process, deleting and replacing during the copy
    read_record = blob_packs.read_record

    def meanwhile(fd, key, offset, length):
        data = read_record(fd, key, offset, length)
        if key == "profiles/0":
            other.delete("profiles/0")
            other.put_many([("profiles/1", b"replaced")])
        return data

    monkeypatch.setattr(blob_packs, "read_record", meanwhile)
    assert store.reclaim()[0] == 1
    with pytest.raises(NotFound):
        store.get("profiles/0")
    assert store.get("profiles/1") == b"replaced"
    assert sum(_live(tmp_path).values()) == len(b"replaced") + 100


def test_a_reader_that_found_a_blob_before_it_moved_still_reads_it(tmp_path, monkeypatch):
    store, first = _mostly_dead_pack(tmp_path, monkeypatch)
    where = store.packs.locate(["profiles/1"])["profiles/1"]
    assert where[0] == first
    store.reclaim()
    assert store.packs.read(where) is None  # its pack is gone
    assert store._read("profiles/1", store._path("profiles/1"), where) == b"\1" * 400


def test_a_record_that_fails_its_crc_is_left_where_it_is(tmp_path, monkeypatch, caplog):
    store, first = _mostly_dead_pack(tmp_path, monkeypatch)
    pack, offset, _length = store.packs.locate(["profiles/0"])["profiles/0"]
    with open(tmp_path / ".packs" / pack, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff")  # a flipped byte on disk
    assert store.reclaim() == (0, 0)
    assert "does not match its CRC" in caplog.text
    assert first in {p.name for p in _packs(tmp_path)}
    assert store.packs.locate(["profiles/0"])["profiles/0"][0] == first
    assert store.packs.locate(["profiles/1"])["profiles/1"][0] != first  # the sound one moved
    caplog.clear()
    assert store.reclaim() == (0, 0)  # the next pass: the damaged record is not read or logged again
    assert "does not match" not in caplog.text
    store.delete("profiles/0")  # retention reaches it: the pack goes
    assert first not in {p.name for p in _packs(tmp_path)}


def test_reclaim_stops_between_chunks_when_asked(tmp_path, monkeypatch):
    store, first = _mostly_dead_pack(tmp_path, monkeypatch)
    monkeypatch.setattr(blob_packs, "RECLAIM_CHUNK", 1)  # a chunk per blob
    assert store.reclaim(stopping=iter([False, True]).__next__) == (0, 0)
    moved = {k: where[0] for k, where in store.packs.locate(["profiles/0", "profiles/1"]).items()}
    assert moved["profiles/0"] != first and moved["profiles/1"] == first
    size = (tmp_path / ".packs" / first).stat().st_size
    assert store.reclaim() == (1, size)  # the next pass finishes it


@pytest.mark.parametrize("lost, reopen", [
    ("ALTER TABLE packs DROP COLUMN live", lambda root: LocalBlobStore(root)),  # an index from before the count
    ("UPDATE packs SET live = 0", lambda root: LocalBlobStore(root).recover()),  # recover counts again
])
def test_the_live_bytes_are_counted_again(tmp_path, lost, reopen):
    store = LocalBlobStore(tmp_path)
    store.put_many([("profiles/a", b"12345"), ("profiles/b", b"678")])
    store.close()
    with _index(tmp_path) as db:
        db.execute(lost)
    reopen(tmp_path)
    assert list(_live(tmp_path).values()) == [8]
