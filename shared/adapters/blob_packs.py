"""Pack files: the local blob folder's store for batches of write-once blobs (uploads).

A batch is appended to this process's pack file and fsynced once, where a file per blob cost a
file creation, an fsync each and a folder sync (a third of `serve`'s ingest rate on ext4). Each
record describes itself (key, length, CRC), so the packs are the truth and the index beside them
(`index.db`, SQLite, key -> pack, offset, length) can be rebuilt from them: its commits skip the
fsync, and `recover` re-reads what a crash kept out of it. Each process appends to a pack of its
own; every process reads every pack through the shared index. A pack stops growing at
`PACK_BYTES` and is deleted once none of its blobs is left. A blob replaced or deleted leaves its
bytes until then, so `reclaim` copies the blobs still live in a sealed pack that is mostly dead
(uploads of services kept for different times share packs) to the end of this process's pack,
and the emptied pack goes.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator, Sequence

from shared.adapters.pack_records import encode, fsync_dir, read_record, scan, write_all

log = logging.getLogger(__name__)

FOLDER = ".packs"  # starts with a dot: no blob key can name it
INDEX = "index.db"
SUFFIX = ".pack"
PACK_BYTES = 64 << 20
LOOKUP = 500  # keys per index query (SQLite's bound on parameters is far above)
# `reclaim` copies a sealed pack's blobs once fewer than this share of its bytes are live, so a
# copy always writes less than it frees.
RECLAIM_BELOW = 0.5
RECLAIM_CHUNK = 1 << 20  # bytes copied per append: an upload waits for one at most (bench/reclaim.py)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS packs (
    name TEXT PRIMARY KEY,
    indexed_to INTEGER NOT NULL,  -- every record before this offset is in blobs (or was deleted)
    sealed INTEGER NOT NULL DEFAULT 0,  -- no process appends to it any more
    live INTEGER NOT NULL DEFAULT 0  -- the bytes of its indexed blobs (their data)
);
CREATE TABLE IF NOT EXISTS blobs (
    key TEXT PRIMARY KEY,
    pack TEXT NOT NULL,
    offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    written REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS blobs_by_pack ON blobs (pack);
"""


class _Writer:
    __slots__ = ("pid", "name", "fd", "size")

    def __init__(self, name: str, fd: int) -> None:
        self.pid = os.getpid()
        self.name = name
        self.fd = fd
        self.size = 0


class Packs:
    """The pack files and index under `<root>/.packs`; thread-safe, and safe in a forked child."""

    def __init__(self, root: str) -> None:
        self.folder = f"{root}/{FOLDER}"
        os.makedirs(self.folder, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()  # one append (write, fsync, index) at a time per process
        self._writer: _Writer | None = None
        # Records reclaim found damaged: logged once, then passed over (each pass would re-read
        # and re-log them; they stay where they are and keep their pack).
        self._damaged: set[tuple[str, int]] = set()
        db = self._db()
        db.executescript(_SCHEMA)
        if "live" not in {row[1] for row in db.execute("PRAGMA table_info(packs)")}:
            _add_live(db)

    def _db(self) -> sqlite3.Connection:
        """This thread's connection (sqlite3's are not shared between threads, nor across a fork)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(f"{self.folder}/{INDEX}", timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # The packs are fsynced before their rows are written and `recover` re-reads them:
            # a commit the power cut took is rebuilt, so it need not wait for the disk.
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _path(self, pack: str) -> str:
        return f"{self.folder}/{pack}"

    def append(self, items: Sequence[tuple[str, bytes]],
               moved: Sequence[tuple[str, int]] | None = None) -> None:
        """Store every (key, data) durably in one write and one fsync, then index them (`moved`:
        see `_index`)."""
        parts, starts, total = encode(items)
        with self._lock:
            writer = self._open_writer(total)
            base = writer.size
            try:
                write_all(writer.fd, parts)
                os.fsync(writer.fd)
            except BaseException:
                try:
                    os.ftruncate(writer.fd, base)  # no half-written record stays behind
                    os.lseek(writer.fd, base, os.SEEK_SET)
                except OSError:
                    os.close(writer.fd)  # left as it is: `recover` cuts the tail at the next start
                    self._writer = None
                raise
            writer.size = base + total
            with _transaction(self._db()) as db:
                emptied = self._index(db, writer, items, [base + start for start in starts], moved)
        self._unlink(emptied)

    def _index(self, db: sqlite3.Connection, writer: _Writer, items: Sequence[tuple[str, bytes]],
               offsets: list[int], moved: Sequence[tuple[str, int]] | None) -> list[str]:
        """Index the records just appended at `offsets`. New blobs replace what their keys named;
        a copy `reclaim` made (`moved`: the pack and offset it was copied from) takes the place of
        its original only if that is still what the key names (not deleted or replaced since)."""
        if moved is None:
            now = time.time()
            latest = {key: (key, writer.name, offset, len(data), now)
                      for (key, data), offset in zip(items, offsets)}  # a key twice in a batch: the last
            rows = list(latest.values())
            freed = _live_of(db, [row[0] for row in rows])
            db.executemany("INSERT OR REPLACE INTO blobs VALUES (?, ?, ?, ?, ?)", rows)
            added = sum(row[3] for row in rows)
        else:
            freed, added = {}, 0
            for (key, data), offset, (pack, was) in zip(items, offsets, moved):
                if db.execute("UPDATE blobs SET pack = ?, offset = ? WHERE key = ? AND pack = ? AND offset = ?",
                              (writer.name, offset, key, pack, was)).rowcount:
                    freed[pack] = freed.get(pack, 0) + len(data)
                    added += len(data)
        _take_live(db, freed)
        db.execute("UPDATE packs SET indexed_to = ?, live = live + ? WHERE name = ?",
                   (writer.size, added, writer.name))
        return _drop_empty(db, freed)

    def _open_writer(self, incoming: int) -> _Writer:
        """This process's pack, a new one when there is none or this batch would take it past
        PACK_BYTES (a batch never spans two packs)."""
        writer = self._writer
        if writer is not None and writer.pid == os.getpid():
            if writer.size == 0 or writer.size + incoming <= PACK_BYTES:
                return writer
            self._seal(writer)
        name = f"{time.time_ns():016x}-{os.getpid()}{SUFFIX}"
        fd = os.open(self._path(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        fsync_dir(self.folder)  # so a crash cannot lose the pack's name while its data is fsynced
        db = self._db()
        db.execute("INSERT INTO packs (name, indexed_to) VALUES (?, 0)", (name,))
        self._writer = _Writer(name, fd)
        return self._writer

    def _seal(self, writer: _Writer) -> None:
        os.close(writer.fd)
        self._writer = None
        with _transaction(self._db()) as db:
            db.execute("UPDATE packs SET sealed = 1 WHERE name = ?", (writer.name,))
            emptied = _drop_empty(db, [writer.name])
        self._unlink(emptied)

    def locate(self, keys: Sequence[str]) -> dict[str, tuple[str, int, int]]:
        """key -> (pack, offset, length) for those of `keys` that are packed."""
        return {key: (pack, offset, length) for key, pack, offset, length
                in _where_key_in(self._db(), "SELECT key, pack, offset, length FROM blobs", keys)}

    def read(self, where: tuple[str, int, int]) -> bytes | None:
        """The bytes at a location `locate` gave; None when its pack went in the meantime."""
        pack, offset, length = where
        try:
            fd = os.open(self._path(pack), os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            data = os.pread(fd, length, offset)
        finally:
            os.close(fd)
        return data if len(data) == length else None

    def delete(self, keys: Sequence[str]) -> None:
        """Unindex `keys`; a sealed pack left with no blob is deleted. Takes the index's write lock
        only when one of them is packed (a window's write or delete, say, finds none)."""
        if not _live_of(self._db(), keys):
            return
        with _transaction(self._db()) as db:
            freed = _live_of(db, keys)  # again, under the write lock
            db.executemany("DELETE FROM blobs WHERE key = ?", [(k,) for k in keys])
            _take_live(db, freed)
            emptied = _drop_empty(db, freed)
        self._unlink(emptied)

    def reclaim(self, stopping: Callable[[], bool] = lambda: False) -> tuple[int, int]:
        """Copy the live blobs of each sealed pack less than RECLAIM_BELOW live to this process's
        pack, RECLAIM_CHUNK bytes an append, and delete it once emptied; a blob deleted or
        replaced meanwhile is left as it is. Stops between chunks once `stopping()`. Returns the
        packs deleted and the bytes their files held."""
        db = self._db()
        candidates = db.execute("SELECT name, indexed_to FROM packs WHERE sealed = 1 AND live < indexed_to * ? "
                                "ORDER BY name", (RECLAIM_BELOW,)).fetchall()
        packs = freed = 0
        for name, size in candidates:
            if stopping():
                break
            if self._reclaim_one(name, stopping):
                packs += 1
                freed += size
        return packs, freed

    def _reclaim_one(self, pack: str, stopping: Callable[[], bool]) -> bool:
        """Copy `pack`'s live blobs away; True when the pack is gone at the end."""
        live = self._db().execute("SELECT key, offset, length FROM blobs WHERE pack = ? ORDER BY offset",
                                  (pack,)).fetchall()
        try:
            fd = os.open(self._path(pack), os.O_RDONLY)
        except FileNotFoundError:
            return True  # deleted by another process meanwhile
        try:
            chunk: list[tuple[str, bytes]] = []
            origins: list[tuple[str, int]] = []
            size = 0
            for key, offset, length in live:
                if (pack, offset) in self._damaged:
                    continue
                data = read_record(fd, key, offset, length)
                if data is None:
                    self._damaged.add((pack, offset))
                    log.error("pack %s: the record of %s at %d does not match its CRC; left where it is, "
                              "and its pack with it", pack, key, offset)
                    continue
                chunk.append((key, data))
                origins.append((pack, offset))
                size += length
                if size >= RECLAIM_CHUNK:
                    self.append(chunk, moved=origins)
                    chunk, origins, size = [], [], 0
                    if stopping():
                        return False
            if chunk:
                self.append(chunk, moved=origins)
        finally:
            os.close(fd)
        # Emptied by the copies, or already before (a pack left empty is dropped here too).
        with _transaction(self._db()) as db:
            emptied = _drop_empty(db, [pack])
        self._unlink(emptied)
        return not os.path.exists(self._path(pack))

    def listing(self, prefix: str) -> Iterator[tuple[str, datetime]]:
        rows = self._db().execute("SELECT key, written FROM blobs WHERE key >= ? AND key < ?",
                                  (prefix, prefix + "\x7f")).fetchall()  # keys are ASCII below 0x7f
        for key, written in rows:
            yield key, datetime.fromtimestamp(written, timezone.utc)

    def _unlink(self, packs: Iterable[str]) -> None:
        """Delete the files of packs `_drop_empty` forgot (after its commit: a crash in between
        leaves a file `recover` indexes again, never a row without its file)."""
        for pack in packs:
            try:
                os.unlink(self._path(pack))
            except FileNotFoundError:
                pass

    def recover(self) -> int:
        """Before any writer starts: index what a crash left unindexed at the end of each pack,
        cut a half-written record off, forget packs that are gone, seal every pack, count each
        one's live bytes again and delete the empty ones. Returns how many half-written records
        there were."""
        db = self._db()
        known = dict(db.execute("SELECT name, indexed_to FROM packs").fetchall())
        on_disk = {n for n in os.listdir(self.folder) if n.endswith(SUFFIX)}
        torn = 0
        for name in sorted(on_disk):
            rows, end, cut = scan(self._path(name), known.get(name, 0))
            torn += cut
            with _transaction(db):
                # An existing row wins: it was written by a later, committed batch.
                db.executemany("INSERT OR IGNORE INTO blobs VALUES (?, ?, ?, ?, ?)",
                               [(k, name, o, n, w) for k, o, n, w in rows])
                db.execute("INSERT INTO packs (name, indexed_to, sealed) VALUES (?, ?, 1) ON CONFLICT (name) "
                           "DO UPDATE SET indexed_to = excluded.indexed_to, sealed = 1", (name, end))
        with _transaction(db):
            gone = [(name,) for name in known if name not in on_disk]
            db.executemany("DELETE FROM blobs WHERE pack = ?", gone)
            db.executemany("DELETE FROM packs WHERE name = ?", gone)
            _count_live(db)
            emptied = _drop_empty(db, sorted(on_disk))
        self._unlink(emptied)
        return torn

    def close(self) -> None:
        with self._lock:
            writer, self._writer = self._writer, None
            if writer is not None and writer.pid == os.getpid():
                try:
                    self._seal(writer)
                except sqlite3.Error as exc:  # a full disk, say: `recover` seals it at the next start
                    log.warning("could not seal pack %s: %s", writer.name, exc)
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
            self._local.conn = None


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction, taken at once (so two processes never both wait to upgrade a read)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _drop_empty(db: sqlite3.Connection, packs: Iterable[str]) -> list[str]:
    """Forget each of `packs` that is sealed and holds no blob; returns them, for `Packs._unlink`
    once the transaction commits."""
    emptied = []
    for pack in packs:
        if db.execute("SELECT 1 FROM packs WHERE name = ? AND sealed = 1 AND NOT EXISTS "
                      "(SELECT 1 FROM blobs WHERE pack = ?)", (pack, pack)).fetchone():
            db.execute("DELETE FROM packs WHERE name = ?", (pack,))
            emptied.append(pack)
    return emptied


def _live_of(db: sqlite3.Connection, keys: Sequence[str]) -> dict[str, int]:
    """pack -> the bytes of those of `keys` it holds."""
    found: dict[str, int] = {}
    for pack, length in _where_key_in(db, "SELECT pack, length FROM blobs", keys):
        found[pack] = found.get(pack, 0) + length
    return found


def _take_live(db: sqlite3.Connection, freed: dict[str, int]) -> None:
    """Take `freed` (pack -> bytes no longer indexed there) off the packs' live bytes."""
    db.executemany("UPDATE packs SET live = live - ? WHERE name = ?", [(n, p) for p, n in freed.items()])


def _count_live(db: sqlite3.Connection) -> None:
    db.execute("UPDATE packs SET live = COALESCE((SELECT SUM(length) FROM blobs WHERE pack = packs.name), 0)")


def _add_live(db: sqlite3.Connection) -> None:
    """An index made before packs counted their live bytes gets the column, counted."""
    with _transaction(db):
        if "live" not in {row[1] for row in db.execute("PRAGMA table_info(packs)")}:  # not by another process
            db.execute("ALTER TABLE packs ADD COLUMN live INTEGER NOT NULL DEFAULT 0")
            _count_live(db)


def _where_key_in(db: sqlite3.Connection, select: str, keys: Sequence[str]) -> Iterator[tuple]:
    """The rows of `select ... WHERE key IN keys`, LOOKUP keys a query."""
    for start in range(0, len(keys), LOOKUP):
        chunk = keys[start:start + LOOKUP]
        yield from db.execute(f"{select} WHERE key IN ({','.join('?' * len(chunk))})", chunk)
