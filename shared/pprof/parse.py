"""Reading profiles: gzip sniffing, bounded decompression, protobuf decoding, checks.

The work is done by the native core (shared.pprof._native, Rust) with the GIL released: the
gzip members are inflated in slices and stopped at the limit, the protobuf is decoded and the
profile checked (see validate.py for the checks) without building Python objects; `parse`
then builds the Profile message from the checked bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from shared.pprof import _native
from shared.pprof.errors import MalformedProfile

if TYPE_CHECKING:
    from shared.pprof.profile_pb2 import Profile

DEFAULT_MAX_DECOMPRESSED = 64 << 20


# NamedTuples rather than dataclasses here: importing dataclasses (inspect with it) is a good part
# of a fresh process's start-up.
class Checked(NamedTuple):
    """What ingest needs of a valid profile, read without building it."""

    time_nanos: int  # collection start, ns since the epoch; 0 when unknown
    sample_types: tuple[tuple[str, str], ...]  # (type, unit) of each value column
    period_type: tuple[str, str] | None
    signature: str  # "period/unit:type/unit,...": two profiles merge iff theirs are equal
    samples: int
    totals: tuple[int, ...]  # the sum of each value column, as info.totals
    empty: bool  # no sample carries a non-zero value
    size: int  # bytes of protobuf (after gunzip)

    @classmethod
    def from_native(cls, info: tuple) -> "Checked":
        """From the summary the native core's check gives (here, or on the HTTP server's threads)."""
        nanos, types, period, signature, samples, totals, empty, _skipped, size = info
        return cls(nanos, tuple(types), period, signature, samples, tuple(totals), empty, size)


def check(data: bytes, *, max_decompressed: int = DEFAULT_MAX_DECOMPRESSED) -> Checked:
    """Check `data` (gzip or raw protobuf) exactly as `parse` does and say what it holds.

    Raises MalformedProfile (with the reason) and ProfileTooLarge as `parse` does.
    """
    _raw, info = _native.check(_as_bytes(data), max_decompressed, inflated=False)
    return Checked.from_native(info)


def parse(data: bytes, *, max_decompressed: int = DEFAULT_MAX_DECOMPRESSED) -> Profile:
    """Decode a pprof profile, gzip-compressed or raw protobuf, and check that it is valid.

    Raises MalformedProfile (with the reason) for anything that is not a valid profile and
    ProfileTooLarge when it decompresses to more than `max_decompressed` bytes.
    """
    data = _as_bytes(data)
    raw, info = _native.check(data, max_decompressed)
    profile = _decode(data if raw is None else raw)
    if info[7]:
        # Fields the checks skipped are dropped, so nothing passes them on unchecked.
        profile.DiscardUnknownFields()
    return profile


def decompress(data: bytes, *, max_decompressed: int = DEFAULT_MAX_DECOMPRESSED) -> bytes:
    """The protobuf bytes of `data`: gunzipped (every member) when it starts with gzip's magic.

    The limit is enforced while inflating; raw protobuf input is held to the same limit.
    """
    data = _as_bytes(data)
    raw = _native.inflate(data, max_decompressed)
    return data if raw is None else raw


def _decode(raw: bytes) -> Profile:
    # Imported here: protobuf's runtime is most of a fresh process's start-up, and checking or
    # merging stored bytes never needs it.
    from google.protobuf.message import DecodeError

    from shared.pprof.profile_pb2 import Profile

    profile = Profile()
    try:
        profile.ParseFromString(raw)
    except DecodeError as exc:
        raise MalformedProfile(f"protobuf: {exc}") from None
    return profile


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    return data if isinstance(data, bytes) else bytes(data)
