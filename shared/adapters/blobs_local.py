"""Blobs under one root folder, the embedded collector's object store: batches (uploads) appended
to pack files (`shared.adapters.blob_packs`), single blobs (the compactor's windows, rewritten as
late data arrives and kept longer) as a file each."""
from __future__ import annotations

import os
import re
import sqlite3
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Sequence

from shared.adapters.blob_packs import LOOKUP, Packs
from shared.adapters.pack_records import fsync_dir
from shared.errors import OUT_OF_SPACE, InsufficientStorage, NotFound, Unavailable

# Keys are relative paths of plain segments: no `..`, no absolute paths, nothing that escapes root.
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}"
_KEY = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")

# What a blob is written under before its rename; listing skips it, a start deletes it.
TMP_PREFIX = ".tmp-"


class LocalBlobStore:
    """`BlobStore` on the local filesystem. `put_many` appends to a pack; `put` writes a temp file,
    fsyncs and renames it, so a reader sees the old bytes or the new ones, never half of them. A
    key is read from the packs first, then from its file (also where earlier versions kept every
    blob)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._root = str(self.root)  # paths are built as strings: pathlib cost a compactor pass a tenth of its CPU
        self.packs = Packs(self._root)

    def _path(self, key: str) -> str:
        if not _KEY.fullmatch(key):
            raise ValueError(f"invalid blob key {key!r}")
        return f"{self._root}/{key}"

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        parent = os.path.dirname(path)
        with self._storage_errors():
            os.makedirs(parent, exist_ok=True)
            _write_atomically(path, data)
            fsync_dir(parent)
            self.packs.delete([key])  # after the file is in place, so a reader never finds neither

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Store every (key, bytes) in one append to a pack and one fsync; durable when this
        returns. When it raises none of them is readable (what was appended before the index
        failed is indexed by the next start's `recover`, whose caller deletes profiles without a row)."""
        for key, _data in items:
            self._path(key)  # every key checked before any write
        if not items:
            return
        with self._storage_errors():
            self.packs.append(items)

    @contextmanager
    def _storage_errors(self) -> Iterator[None]:
        """A full disk, in a file or in the packs' index (SQLITE_FULL), as InsufficientStorage;
        another index error as Unavailable; any other OSError as it is."""
        try:
            yield
        except OSError as exc:
            if exc.errno in OUT_OF_SPACE:
                raise InsufficientStorage(f"blob folder {str(self.root)!r}: {exc.strerror}") from exc
            raise
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_FULL:
                raise InsufficientStorage(f"blob folder {str(self.root)!r}: {exc}") from exc
            raise Unavailable(f"blob index in {str(self.root)!r}: {exc}") from exc

    def get(self, key: str) -> bytes:
        path = self._path(key)
        where = self.packs.locate([key]).get(key)
        return self._read(key, path, where)

    def _read(self, key: str, path: str, where: tuple[str, int, int] | None) -> bytes:
        if where is not None:
            data = self.packs.read(where)
            if data is None:
                # Its pack went since the lookup: `reclaim` moved the blob first, so ask again.
                moved = self.packs.locate([key]).get(key)
                if moved is not None and moved != where:
                    data = self.packs.read(moved)
            if data is not None:
                return data
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise NotFound(f"nothing found: no blob {key!r}") from None

    def get_many(self, keys: Sequence[str]) -> Iterator[bytes]:
        # A file read waits on no network, so reading ahead would only add threads; the packs'
        # index is asked once per chunk of keys, not once per key.
        for start in range(0, len(keys), LOOKUP):
            chunk = keys[start:start + LOOKUP]
            paths = [self._path(key) for key in chunk]
            found = self.packs.locate(chunk)
            for key, path in zip(chunk, paths):
                yield self._read(key, path, found.get(key))

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._storage_errors():
            self.packs.delete([key])
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def list(self, prefix: str) -> Iterator[tuple[str, datetime]]:
        folder = self._path(prefix.rstrip("/"))
        packed = set()
        for key, written in self.packs.listing(prefix.rstrip("/") + "/"):
            packed.add(key)
            yield key, written
        skip = len(self._root) + 1
        for dirpath, _dirs, files in os.walk(folder):
            base = dirpath[skip:] + "/"
            for name in files:
                if name.startswith(TMP_PREFIX) or base + name in packed:
                    continue  # a write in progress or one a crash left (not a blob), or shadowed by a pack
                try:
                    mtime = os.stat(f"{dirpath}/{name}").st_mtime
                except FileNotFoundError:
                    continue  # deleted while we walked
                yield base + name, datetime.fromtimestamp(mtime, timezone.utc)

    def reclaim(self, stopping: Callable[[], bool] = lambda: False) -> tuple[int, int]:
        """Free the space of packs that are mostly replaced or deleted blobs (`Packs.reclaim`):
        the packs deleted and the bytes their files held."""
        with self._storage_errors():
            return self.packs.reclaim(stopping)

    def ping(self) -> None:
        if not (self.root.is_dir() and os.access(self.root, os.W_OK)):
            raise Unavailable(f"blob folder {str(self.root)!r} is not a writable directory")

    def close(self) -> None:
        """Every write is finished when it returns; this process's pack is sealed."""
        self.packs.close()

    def recover(self) -> int:
        """Mend what a crash left: delete the temporary files of writes it cut short, cut a
        half-written record off the end of a pack and index what it had appended but not yet
        indexed. Call it before any writer starts. Returns how many partial writes there were."""
        removed = self.packs.recover()
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(TMP_PREFIX):
                    try:
                        os.unlink(os.path.join(dirpath, name))
                        removed += 1
                    except FileNotFoundError:
                        pass
        return removed


def _write_atomically(path: str, data: bytes) -> None:
    """A temp file beside `path`, fsynced, renamed over it: readers never see half of it."""
    parent, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=TMP_PREFIX, suffix=f".{name}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
