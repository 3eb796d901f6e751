"""What `profefe serve` mends when it starts, before it accepts an upload: a crash (kill -9, power
loss) between writing a blob and committing its row leaves a blob nobody can find, and a write cut
short leaves a temporary file. Both are deleted, so every blob has its row and every row its blob."""
from __future__ import annotations

import logging

from shared.adapters.blobs_local import LocalBlobStore
from shared.model import blob_key, is_id
from shared.ports import MetaStore

log = logging.getLogger(__name__)

PROFILE_PREFIX = "profiles/"
_LOOKUP = 500  # ids looked up per query


def remove_unindexed(blobs: LocalBlobStore, meta: MetaStore) -> int:
    """Delete every profile blob without a metadata row, and every partial write; returns how
    many blobs went. Only safe while nothing writes: the rows of blobs being stored are not
    committed yet."""
    partial = blobs.recover()
    ids = [i for i in (key[len(PROFILE_PREFIX):] for key, _ in blobs.list(PROFILE_PREFIX)) if is_id(i)]
    removed = 0
    for start in range(0, len(ids), _LOOKUP):
        chunk = ids[start:start + _LOOKUP]
        known = {m.id for m in meta.get_many(chunk)}
        for pid in chunk:
            if pid not in known:
                blobs.delete(blob_key(pid))
                removed += 1
    if removed or partial:
        log.warning("start: removed %d profile blobs without a row and %d partial writes (an earlier "
                    "process stopped mid-write)", removed, partial)
    return removed
