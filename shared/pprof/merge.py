"""Merging profiles the way google/pprof's profile.Merge does, one input at a time.

The merge is done by the native core (native/src/merge.rs) with the GIL released. Rules:
- every input has the period type and sample types of the first, else IncompatibleProfiles;
  a profile with no sample types therefore only merges with others that have none;
- samples with the same stack and the same labels are one sample, their values added; samples
  whose values are all zero are dropped;
- a stack is compared by location identity, not by id: the location's mapping (by build id, else
  file name, plus size rounded to 4 KiB and file offset, so the same binary loaded at another
  address is the same mapping), its address relative to the mapping start, its lines (function
  name, system name, file, start line; line and column) and is_folded;
- a label with neither a string nor a number is no label; labels compare in key order;
- duration_nanos is summed, period is the maximum, time_nanos the earliest non-zero one; comments
  are kept once each in first-seen order; drop_frames and keep_frames come from the first input;
  default_sample_type and doc_url are the first non-empty ones;
- the result is compact: only what its samples reference, ids renumbered from 1, the first
  input's main mapping (mapping[0]) first.

pprof takes time_nanos from a running "zero or smaller" comparison, so a zero in the middle of
the inputs resets it; we keep the earliest non-zero value whatever the order, which is what its
documentation promises.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from shared.pprof import _native
from shared.pprof.parse import DEFAULT_MAX_DECOMPRESSED
from shared.pprof.write import DEFAULT_LEVEL

if TYPE_CHECKING:
    from shared.pprof.profile_pb2 import Profile


def merge(profiles: Iterable[Profile | bytes]) -> Profile:
    """Merge `profiles` into one new, compact profile (see the module docstring for the rules)."""
    merger = Merger()
    for p in profiles:
        merger.add(p)
    return merger.result()


class Merger:
    """A streaming merge: `add` profiles one by one, then take the `result` or `write` it.

    Only the merged state is held (deduplicated strings, functions, mappings, locations and
    sample sums), never the inputs, so merging a day of profiles costs about as much memory as
    merging an hour.
    """

    def __init__(self) -> None:
        self._state = _native.Merger()

    def add(self, p: Profile | bytes, *, max_decompressed: int = DEFAULT_MAX_DECOMPRESSED) -> None:
        """Fold `p` into the result: a Profile, or its stored bytes (gzip or raw protobuf), which
        are then read without building a Profile, within `max_decompressed` and checked as
        `parse` checks them.

        Raises IncompatibleProfiles if its period type or sample types differ from the first's
        (the result is then as it was), MalformedProfile / ProfileTooLarge for bad bytes.
        """
        if isinstance(p, bytes):
            self._state.add(p, max_decompressed)
        elif isinstance(p, (bytearray, memoryview)):
            self._state.add(bytes(p), max_decompressed)
        else:
            self._state.add(p.SerializeToString(), sys.maxsize)

    def result(self) -> Profile:
        """The merged profile, compacted; the Merger can go on accepting profiles afterwards."""
        from shared.pprof.profile_pb2 import Profile

        return Profile.FromString(self._state.encode())

    def encode(self) -> bytes:
        """The merged profile's protobuf encoding, without building the Profile."""
        return self._state.encode()

    def write(self, *, level: int = DEFAULT_LEVEL) -> bytes:
        """`write(self.result(), level=level)` without building the Profile in between."""
        return self._state.write(level)
