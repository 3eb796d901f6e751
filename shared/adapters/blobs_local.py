"""Blobs as files under one root folder: the embedded collector's object store."""
from __future__ import annotations

import os
import re
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Sequence

from shared.errors import OUT_OF_SPACE, InsufficientStorage, NotFound, Unavailable

# Keys are relative paths of plain segments: no `..`, no absolute paths, nothing that escapes root.
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}"
_KEY = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")

# The files of one batch are written and fsynced this many at a time: the disk (here ext4) folds
# concurrent fsyncs into one journal commit, about 5x fewer milliseconds per file than in turn.
WRITERS = 8
# What a blob is written under before its rename; listing skips it, a start deletes it.
TMP_PREFIX = ".tmp-"


class LocalBlobStore:
    """`BlobStore` on the local filesystem; a write is a temp file + fsync + rename, so a reader
    sees the old bytes or the new ones, never half of them."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._root = str(self.root)  # paths are built as strings: pathlib cost a compactor pass a tenth of its CPU
        self._pool: tuple[int, ThreadPoolExecutor] | None = None
        self._pool_lock = threading.Lock()

    def _writers(self) -> ThreadPoolExecutor:
        """This process's pool: made on first use, again in a forked child (threads do not survive a fork)."""
        with self._pool_lock:
            if self._pool is None or self._pool[0] != os.getpid():
                self._pool = (os.getpid(), ThreadPoolExecutor(WRITERS, thread_name_prefix="blob-write"))
            return self._pool[1]

    def _path(self, key: str) -> str:
        if not _KEY.fullmatch(key):
            raise ValueError(f"invalid blob key {key!r}")
        return f"{self._root}/{key}"

    def put(self, key: str, data: bytes) -> None:
        self.put_many([(key, data)])

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Store every (key, bytes); each file is written and renamed into place as in `put`, then
        each folder they landed in is fsynced once, so a batch costs one directory sync, not one
        per file. When this returns every blob is durable; on an error, some may be stored."""
        paths = [(self._path(key), data) for key, data in items]  # every key checked before any write
        folders: dict[str, None] = {}
        try:
            for path, _data in paths:
                parent = os.path.dirname(path)
                if parent not in folders:
                    os.makedirs(parent, exist_ok=True)
                    folders[parent] = None
            if len(paths) == 1:
                _write_atomically(*paths[0])
            else:
                pool = self._writers()
                writes = [pool.submit(_write_atomically, path, data) for path, data in paths]
                wait(writes)  # all of them, so none is still writing when the caller cleans up
                for done in writes:
                    done.result()
        except OSError as exc:
            if exc.errno in OUT_OF_SPACE:
                raise InsufficientStorage(f"blob folder {str(self.root)!r}: {exc.strerror}") from exc
            raise
        for folder in folders:
            _fsync_dir(folder)

    def get(self, key: str) -> bytes:
        try:
            with open(self._path(key), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise NotFound(f"nothing found: no blob {key!r}") from None

    def get_many(self, keys: Sequence[str]) -> Iterator[bytes]:
        # A file read waits on no network, so reading ahead would only add threads.
        for key in keys:
            yield self.get(key)

    def delete(self, key: str) -> None:
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass

    def list(self, prefix: str) -> Iterator[tuple[str, datetime]]:
        folder = self._path(prefix.rstrip("/"))
        skip = len(self._root) + 1
        for dirpath, _dirs, files in os.walk(folder):
            base = dirpath[skip:] + "/"
            for name in files:
                if name.startswith(TMP_PREFIX):
                    continue  # a write in progress, or one a crash left; not a blob
                try:
                    mtime = os.stat(f"{dirpath}/{name}").st_mtime
                except FileNotFoundError:
                    continue  # deleted while we walked
                yield base + name, datetime.fromtimestamp(mtime, timezone.utc)

    def ping(self) -> None:
        if not (self.root.is_dir() and os.access(self.root, os.W_OK)):
            raise Unavailable(f"blob folder {str(self.root)!r} is not a writable directory")

    def close(self) -> None:
        """Every write is finished when it returns; only the writer threads are left to end."""
        with self._pool_lock:
            if self._pool is not None and self._pool[0] == os.getpid():
                self._pool[1].shutdown(wait=False)
            self._pool = None

    def remove_partial_writes(self) -> int:
        """Delete the temporary files of writes a crash cut short; call it before any writer
        starts. Returns how many there were."""
        removed = 0
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


def _fsync_dir(path: str) -> None:
    """Make the rename itself durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
