"""Writing profiles: protobuf serialised, then gzip-compressed as pprof tools expect on disk."""

from __future__ import annotations

import gzip

from shared.pprof.profile_pb2 import Profile

DEFAULT_LEVEL = 1  # fast: profiles are written on the request path; their size barely changes


def write(p: Profile, *, level: int = DEFAULT_LEVEL) -> bytes:
    """The gzip-compressed protobuf encoding of `p` (mtime 0, so equal profiles give equal bytes)."""
    return gzip.compress(p.SerializeToString(), compresslevel=level, mtime=0)
