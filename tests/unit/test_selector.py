"""Pyroscope's label selectors and profile type ids, read into what profefe's store can find."""
from __future__ import annotations

import pytest

from services.query_api.selector import ProfileTypeId, Selector, parse_selector, window
from shared.errors import BadRequest
from shared.model import Labels, ProfileType


@pytest.mark.parametrize("raw, want", [
    ("", Selector()),
    ("{}", Selector()),
    (' { service_name = "shop" , region="eu", } ', Selector(service="shop", labels=Labels.of([("region", "eu")]))),
    ('{"otel.scope.name"=\'py\', process.runtime.name=`cpython`}',
     Selector(labels=Labels.of([("otel.scope.name", "py"), ("process.runtime.name", "cpython")]))),
    ('{k="a\\"b\\\\c"}', Selector(labels=Labels.of([("k", 'a"b\\c')]))),
    ('{k="}{,="}', Selector(labels=Labels.of([("k", "}{,=")]))),
    ('{__name__="memory", service_name="x"}', Selector(service="x", type=ProfileType.HEAP)),
    ('{__profile_type__="process_cpu:samples:count:cpu:nanoseconds"}',
     Selector(type=ProfileType.CPU, sample_type="samples")),
    ('{__name__="exceptions"}', Selector(type=ProfileType.OTHER, labels=Labels.of([("pyroscope.name", "exceptions")]))),
])
def test_selectors(raw, want):
    assert parse_selector(raw) == want


@pytest.mark.parametrize("raw", [
    "service_name=x", "{service_name=x}", '{a="b" c="d"}', '{a!="b"}', '{a=~"b.*"}', '{a!~"b"}', '{="b"}',
    '{a="b}', '{a="\\z"}', '{service_name="a", service_name="b"}', '{__name__="memory", __name__="block"}',
    '{a="\x01"}', '{a="line\\nbreak"}', "{" + ",".join(f'k{i}="v"' for i in range(65)) + "}",
])
def test_bad_selectors(raw):
    with pytest.raises(BadRequest):
        parse_selector(raw)


def test_profile_type_ids():
    tid = ProfileTypeId.parse("memory:inuse_space:bytes:space:bytes")
    assert (tid.type, tid.sample_type, tid.id) == (ProfileType.HEAP, "inuse_space", "memory:inuse_space:bytes:space:bytes")
    assert ProfileTypeId.parse("goroutines:goroutine:count:goroutine:count").type is ProfileType.GOROUTINE
    assert ProfileTypeId.parse("wall:wall:nanoseconds::").type is ProfileType.WALL
    for bad in ("", "cpu", "a:b:c:d", "a:b:c:d:e:f", ":cpu:nanoseconds:cpu:nanoseconds", "x" * 2000):
        with pytest.raises(BadRequest):
            ProfileTypeId.parse(bad)


def test_windows_in_milliseconds():
    start, end = window(1_767_225_600_999, 1_767_229_199_999)
    assert (start.isoformat(), end.isoformat()) == ("2026-01-01T00:00:00+00:00", "2026-01-01T00:59:59+00:00")
    start, end = window(0, 0, now_ms=1_767_229_200_000)
    assert (start.isoformat(), end.isoformat()) == ("2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00")
    for bad in ((5, 4), (-1, 0), (0, 10**18)):
        with pytest.raises(BadRequest):
            window(*bad)
