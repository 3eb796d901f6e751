"""Reading profiles: gzip sniffing, bounded streaming decompression, protobuf decoding, checks."""

from __future__ import annotations

import zlib

from google.protobuf.message import DecodeError

from shared.pprof.errors import MalformedProfile, ProfileTooLarge
from shared.pprof.profile_pb2 import Profile
from shared.pprof.validate import check_valid

GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_MAX_DECOMPRESSED = 64 << 20
# Output is produced in slices of this size, so a gzip bomb is stopped within one slice of the
# limit instead of being inflated whole.
_CHUNK = 1 << 20


def parse(data: bytes, *, max_decompressed: int = DEFAULT_MAX_DECOMPRESSED) -> Profile:
    """Decode a pprof profile, gzip-compressed or raw protobuf, and check that it is valid.

    Raises MalformedProfile (with the reason) for anything that is not a valid profile and
    ProfileTooLarge when it decompresses to more than `max_decompressed` bytes.
    """
    raw = _decompressed(data, max_decompressed)
    if not raw:
        raise MalformedProfile("empty")
    profile = _decode(raw, "protobuf")
    # The checks read the profile as columns of its encoding. The input's own bytes may repeat
    # a field or carry unknown ones that a column view would count, so the columns come from the
    # canonical encoding of the profile without unknown fields, which is what merge reads too.
    profile.DiscardUnknownFields()
    check_valid(profile)
    return profile


def parse_unchecked(data: bytes, *, max_decompressed: int = DEFAULT_MAX_DECOMPRESSED,
                    what: str = "protobuf") -> Profile:
    """Decode without the validity checks, for bytes this system wrote from checked profiles.
    Size limits still hold; undecodable bytes are MalformedProfile ("<what>: <reason>")."""
    return _decode(_decompressed(data, max_decompressed), what)


def _decode(raw: bytes | bytearray, what: str) -> Profile:
    profile = Profile()
    try:
        profile.ParseFromString(raw)  # type: ignore[arg-type]  # the stubs say bytes; a bytearray is read as it is
    except DecodeError as exc:
        raise MalformedProfile(f"{what}: {exc}") from None
    return profile


def decompress(data: bytes, *, max_decompressed: int = DEFAULT_MAX_DECOMPRESSED) -> bytes:
    """The protobuf bytes of `data`: gunzipped (every member) when it starts with gzip's magic.

    The limit is enforced while inflating; raw protobuf input is held to the same limit.
    """
    return bytes(_decompressed(data, max_decompressed))


def _decompressed(data: bytes, max_decompressed: int) -> bytes | bytearray:
    # The protobuf parser takes a bytearray as it is, so the inflated bytes are never copied.
    if not data:
        raise MalformedProfile("empty")
    if not data.startswith(GZIP_MAGIC):
        if len(data) > max_decompressed:
            raise ProfileTooLarge(max_decompressed)
        return data
    out = bytearray()
    rest = memoryview(data)
    while rest:
        if bytes(rest[:2]) != GZIP_MAGIC:
            raise MalformedProfile("gzip: trailing data after the last member")
        rest = _inflate_member(rest, out, max_decompressed)
    return out


def _inflate_member(data: memoryview, out: bytearray, limit: int) -> memoryview:
    """Inflate one gzip member into `out`; returns the input that follows it."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pending: bytes | memoryview = data
    try:
        while not inflater.eof:
            chunk = inflater.decompress(pending, min(_CHUNK, limit + 1 - len(out)))
            consumed = len(pending) - len(inflater.unconsumed_tail)
            pending = inflater.unconsumed_tail
            if chunk:
                out += chunk
                if len(out) > limit:
                    raise ProfileTooLarge(limit)
            elif not consumed:
                raise MalformedProfile("gzip: truncated stream")
    except zlib.error as exc:
        raise MalformedProfile(f"gzip: {exc}") from None
    return memoryview(inflater.unused_data)
