"""Writing profiles: protobuf serialised, then gzip-compressed as pprof tools expect on disk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.pprof import _native

if TYPE_CHECKING:
    from shared.pprof.profile_pb2 import Profile

DEFAULT_LEVEL = 1  # fast: profiles are written on the request path; their size barely changes


def write(p: Profile, *, level: int = DEFAULT_LEVEL) -> bytes:
    """The gzip-compressed protobuf encoding of `p` (mtime 0, so equal profiles give equal bytes).

    Compressed by the native core with the GIL released."""
    return _native.compress(p.SerializeToString(), level)
