"""The records of a pack file (`shared.adapters.blob_packs`): each is a header (magic, key
length, data length, CRC-32 of key and data), then the key, then the data; so a pack can be read
again without its index, and a record cut short or damaged is told from a whole one. Also the
writes and the folder sync that storing them takes."""
from __future__ import annotations

import os
import struct
import zlib
from typing import Sequence

HEADER = struct.Struct("<4sHQI")
MAGIC = b"PFP1"
IOV_MAX = 1024  # buffers one writev takes on Linux


def encode(items: Sequence[tuple[str, bytes]]) -> tuple[list[bytes], list[int], int]:
    """The buffers of the records of `items`, to be written as they are (the data is never copied
    into one buffer), where each one's data starts relative to the first, and their total size."""
    parts: list[bytes] = []
    starts = []
    total = 0
    for key, data in items:
        raw = key.encode()
        starts.append(total + HEADER.size + len(raw))
        parts += (HEADER.pack(MAGIC, len(raw), len(data), zlib.crc32(data, zlib.crc32(raw))), raw, data)
        total += HEADER.size + len(raw) + len(data)
    return parts, starts, total


def read_record(fd: int, key: str, offset: int, length: int) -> bytes | None:
    """The data of the record of `key` whose data starts at `offset`, checked against the record's
    own key and CRC; None when they do not match."""
    raw = key.encode()
    start = offset - len(raw) - HEADER.size
    record = os.pread(fd, HEADER.size + len(raw) + length, start)
    if len(record) != HEADER.size + len(raw) + length:
        return None
    magic, key_len, data_len, crc = HEADER.unpack_from(record)
    data = record[HEADER.size + len(raw):]
    if (magic != MAGIC or key_len != len(raw) or data_len != length or record[HEADER.size:HEADER.size + len(raw)] != raw
            or zlib.crc32(data, zlib.crc32(raw)) != crc):
        return None
    return data


def scan(path: str, start: int) -> tuple[list[tuple[str, int, int, float]], int, int]:
    """The records of the pack at `path` from `start`: (key, data offset, length, written) each,
    where the valid ones end, and 1 when a half-written record after them was cut off."""
    rows: list[tuple[str, int, int, float]] = []
    written = os.stat(path).st_mtime
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        at = start
        while at < size:
            f.seek(at)
            head = f.read(HEADER.size)
            if len(head) < HEADER.size:
                break
            magic, key_len, length, crc = HEADER.unpack(head)
            end = at + HEADER.size + key_len + length
            if magic != MAGIC or end > size:
                break
            raw = f.read(key_len)
            data = f.read(length)
            if zlib.crc32(data, zlib.crc32(raw)) != crc:
                break
            try:
                key = raw.decode("ascii")
            except UnicodeDecodeError:
                break
            rows.append((key, at + HEADER.size + key_len, length, written))
            at = end
        cut = 1 if at < size else 0
        if cut:
            f.truncate(at)
            os.fsync(f.fileno())
    return rows, at, cut


def write_all(fd: int, parts: list[bytes]) -> None:
    """Every byte of `parts`, in order, however short each writev falls."""
    views = [memoryview(p) for p in parts if p]
    while views:
        written = os.writev(fd, views[:IOV_MAX])
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if written:
            views[0] = views[0][written:]


def fsync_dir(path: str) -> None:
    """Make a new name in `path` durable (POSIX; a no-op where directories cannot be opened)."""
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
