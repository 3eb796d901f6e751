"""parse refuses what is not a valid profile, with a typed error and a reason."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from collections.abc import Callable

import pytest

from shared.pprof import MalformedProfile, PprofError, Profile, ProfileTooLarge, parse, to_text, write
from tests.unit.pprof.builders import cpu_profile


def test_the_protobuf_runtime_is_upb() -> None:
    from google.protobuf.internal import api_implementation

    assert api_implementation.Type() == "upb"


def test_a_valid_profile_parses_gzipped_raw_and_as_concatenated_gzip_members() -> None:
    p = cpu_profile()
    raw = p.SerializeToString()
    expected = to_text(p)
    assert to_text(parse(raw)) == expected
    assert to_text(parse(write(p))) == expected
    half = len(raw) // 2
    members = gzip.compress(raw[:half]) + gzip.compress(raw[half:])
    assert to_text(parse(members)) == expected


def _mutated(change: Callable[[Profile], None]) -> bytes:
    p = cpu_profile()
    change(p)
    return p.SerializeToString()


def _unknown_field_posing_as_an_id(p: Profile) -> None:
    # Location 1 loses its id (0 is not on the wire) and gains an unknown field 1 of the wrong
    # wire type, which a column view of the raw bytes would read as a packed id 1.
    p.location[0].id = 0
    p.location[0].MergeFromString(b"\x0a\x01\x01")


def _truncated_gzip() -> bytes:
    data = write(cpu_profile())
    return data[: len(data) - 12]


def _set(obj: object, **fields: int) -> None:
    for name, value in fields.items():
        setattr(obj, name, value)


MALFORMED = {
    "empty": (b"", "empty"),
    "empty once gunzipped": (gzip.compress(b""), "empty"),
    "garbage": (b"\x07\x08 not a profile at all \xff\xff", "protobuf"),
    "truncated gzip": (_truncated_gzip(), "gzip: truncated"),
    "corrupt gzip": (b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"\xff" * 40, "gzip"),
    "garbage after a gzip member": (write(cpu_profile()) + b"trailing", "gzip: trailing data"),
    "no string table": (_mutated(lambda p: p.ClearField("string_table")), "string table is empty"),
    "string_table[0] not empty": (
        _mutated(lambda p: p.string_table.__setitem__(0, "x")),
        "string_table[0] must be the empty string",
    ),
    "too few values": (
        _mutated(lambda p: p.sample[1].value.pop()),
        "sample 1 has 1 values, expected 2 sample types",
    ),
    "too many values": (
        _mutated(lambda p: p.sample[0].value.append(5)),
        "sample 0 has 3 values, expected 2 sample types",
    ),
    "samples without sample types": (
        _mutated(lambda p: p.ClearField("sample_type")),
        "2 samples but no sample types",
    ),
    "dangling location": (
        _mutated(lambda p: p.sample[0].location_id.append(99)),
        "sample refers to location id 99, which does not exist",
    ),
    "dangling function": (
        _mutated(lambda p: _set(p.location[0].line[0], function_id=77)),
        "location refers to function id 77, which does not exist",
    ),
    "line without function": (
        _mutated(lambda p: _set(p.location[0].line[0], function_id=0)),
        "line without a function",
    ),
    "dangling mapping": (
        _mutated(lambda p: _set(p.location[1], mapping_id=5)),
        "location refers to mapping id 5, which does not exist",
    ),
    "location id 0": (_mutated(lambda p: _set(p.location[2], id=0)), "location with the reserved id 0"),
    "function id 0": (_mutated(lambda p: _set(p.function[2], id=0)), "function with the reserved id 0"),
    "mapping id 0": (_mutated(lambda p: _set(p.mapping[0], id=0)), "mapping with the reserved id 0"),
    "unknown field posing as an id": (
        _mutated(_unknown_field_posing_as_an_id),
        "location with the reserved id 0",
    ),
    "duplicate location id": (_mutated(lambda p: _set(p.location[2], id=1)), "duplicate location id 1"),
    "duplicate function id": (_mutated(lambda p: _set(p.function[1], id=1)), "duplicate function id 1"),
    "duplicate mapping id": (
        _mutated(lambda p: p.mapping.add(id=1, filename=9)),
        "duplicate mapping id 1",
    ),
    "function name index out of range": (
        _mutated(lambda p: _set(p.function[0], name=1000)),
        "function string index 1000 out of range",
    ),
    "negative string index": (
        _mutated(lambda p: _set(p.sample_type[0], unit=-1)),
        "sample type string index -1 out of range",
    ),
    "label value index out of range": (
        _mutated(lambda p: _set(p.sample[0].label[0], str=13)),
        "label string index 13 out of range",
    ),
    "comment index out of range": (
        _mutated(lambda p: p.comment.append(400)),
        "profile header string index 400 out of range",
    ),
    "mapping file index out of range": (
        _mutated(lambda p: _set(p.mapping[0], filename=50)),
        "mapping string index 50 out of range",
    ),
    "period type index out of range": (
        _mutated(lambda p: _set(p.period_type, unit=50)),
        "period type string index 50 out of range",
    ),
}


@pytest.mark.parametrize("data, reason", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_input_is_refused_with_its_reason(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedProfile) as caught:
        parse(data)
    assert reason in str(caught.value)
    assert isinstance(caught.value, PprofError)


def test_raw_protobuf_over_the_limit_is_too_large() -> None:
    raw = cpu_profile(samples=50).SerializeToString()
    with pytest.raises(ProfileTooLarge) as caught:
        parse(raw, max_decompressed=len(raw) - 1)
    assert caught.value.limit == len(raw) - 1
    assert parse(raw, max_decompressed=len(raw)).sample


def test_gzip_just_over_the_limit_is_too_large_and_at_the_limit_is_fine() -> None:
    raw = cpu_profile(samples=50).SerializeToString()
    data = gzip.compress(raw)
    with pytest.raises(ProfileTooLarge):
        parse(data, max_decompressed=len(raw) - 1)
    assert len(parse(data, max_decompressed=len(raw)).sample) == 50


def test_a_gzip_bomb_stops_at_the_limit_without_being_inflated() -> None:
    bomb_size = 200 << 20
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    bomb = b"".join(compressor.compress(zeros) for _ in range(bomb_size >> 20)) + compressor.flush()
    assert len(bomb) < 1 << 20

    limit = 8 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ProfileTooLarge) as caught:
            parse(bomb, max_decompressed=limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.limit == limit
    assert "larger than 8388608 bytes" in str(caught.value)
    # Inflating the bomb whole would need 200 MiB; we stop within a slice of the limit.
    assert peak < 4 * limit
