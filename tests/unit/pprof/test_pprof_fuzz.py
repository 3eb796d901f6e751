"""Damaged input never escapes as anything but MalformedProfile, and what parses can be used."""

from __future__ import annotations

import gzip

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.pprof import MalformedProfile, merge, parse, to_text, write
from tests.unit.pprof.builders import cpu_profile

VALID = cpu_profile(samples=4).SerializeToString()


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(VALID)
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        # Inserted bytes make repeated and unknown fields, and fields of the wrong wire type.
        i = draw(st.integers(0, len(data)))
        data[i:i] = draw(st.binary(min_size=1, max_size=12))
    if draw(st.booleans()):
        data = data[: draw(st.integers(1, len(data)))]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged(), st.booleans())
def test_damaged_profiles_are_refused_or_usable(data: bytes, compressed: bool) -> None:
    if compressed:
        data = gzip.compress(data)
    try:
        p = parse(data)
    except MalformedProfile:
        return
    # Whatever passed the checks can be merged, rendered and written again.
    merged = merge([p, p])
    to_text(merged)
    assert to_text(parse(write(merged))) == to_text(merged)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=200))
def test_random_bytes_are_refused_or_usable(data: bytes) -> None:
    try:
        p = parse(data)
    except MalformedProfile:
        return
    to_text(merge([p]))
