"""Checking a profile, like pprof's CheckValid plus string-table bounds.

The checks live in the native core (native/src/check.rs) and run on every profile `parse`
reads; in the order they are made, the first problem found is the reason given:
- the string table is not empty and starts with "";
- every sample has one value per sample type (and there are sample types if there are samples);
- mapping, function and location ids are non-zero and unique;
- every line has a function; every reference (location -> mapping, line -> function,
  sample -> location) resolves;
- every string index is within the string table.
Unknown fields are ignored, and so is a known field of an unexpected wire type, as the protobuf
runtimes do.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from shared.pprof import _native

if TYPE_CHECKING:
    from shared.pprof.profile_pb2 import Profile


def check_valid(p: Profile) -> None:
    """Raise MalformedProfile naming the first problem found in `p`."""
    _native.check(p.SerializeToString(), sys.maxsize)
