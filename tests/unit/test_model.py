"""Parsing the domain's values: types, labels, times, ids."""
from __future__ import annotations

import string
import time
from dataclasses import FrozenInstanceError, fields
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import BadRequest
from shared.model import (
    Label,
    Labels,
    ProfileMeta,
    ProfileType,
    contradicting_type,
    format_time,
    id_time,
    is_id,
    new_id,
    parse_time,
    query_unescape,
)


@pytest.mark.parametrize("raw", ["cpu", " cpu", "cpu\t", "heap", "trace", "other", "threadcreate"])
def test_profile_type_parses_trimmed(raw):
    assert ProfileType.parse(raw).value == raw.strip()


@pytest.mark.parametrize("raw", ["Cpu", "CPU", "allocs", "c pu"])
def test_profile_type_refuses(raw):
    with pytest.raises(BadRequest, match=rf'^unknown profile type "{raw}" \(want one of cpu, heap, .*, other\)$'):
        ProfileType.parse(raw)


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_profile_type_is_required(raw):
    with pytest.raises(BadRequest, match='^missing "type"$'):
        ProfileType.parse(raw)


@pytest.mark.parametrize(
    "declared, names, want",
    [
        (ProfileType.CPU, ["alloc_objects", "alloc_space", "inuse_objects", "inuse_space"], ProfileType.HEAP),
        (ProfileType.CPU, ["inuse_space"], ProfileType.HEAP),
        (ProfileType.HEAP, ["samples", "cpu"], ProfileType.CPU),
        (ProfileType.GOROUTINE, ["threadcreate"], ProfileType.THREADCREATE),
        (ProfileType.CPU, ["samples", "cpu"], None),
        (ProfileType.BLOCK, ["contentions", "delay"], None),
        (ProfileType.MUTEX, ["contentions", "delay"], None),
        (ProfileType.OTHER, ["alloc_space"], None),
        (ProfileType.CPU, ["wall"], None),
        (ProfileType.CPU, ["samples", "wall"], None),
        (ProfileType.CPU, [], None),
    ],
)
def test_contradicting_type(declared, names, want):
    assert contradicting_type(declared, names) == want


def test_labels_parse_cases():
    assert Labels.parse(None) == Labels()
    assert list(Labels.parse(",b=2, a = 1 ,=x,c=d=e,,a=0")) == [
        Label("a", "1"), Label("a", "0"), Label("b", "2"), Label("c", "d=e")
    ]


@pytest.mark.parametrize(
    "raw, want",
    [("a%2Cb", "a,b"), ("a%2bb", "a+b"), ("a+b", "a b"), ("%E2%82%AC", "€"), ("100%25", "100%"), ("plain", "plain")],
)
def test_query_unescape_as_go(raw, want):
    assert query_unescape(raw) == want


@pytest.mark.parametrize("raw", ["%", "%2", "%zz", "a%g1", "%ff"])
def test_query_unescape_refuses(raw):
    with pytest.raises(ValueError):
        query_unescape(raw)


def test_labels_bad_escape_names_the_parameter():
    with pytest.raises(BadRequest, match=r'^bad "labels" "a=%zz": invalid URL escape "%zz"$'):
        Labels.parse("a=%zz")


_text = st.text(alphabet=string.ascii_letters + string.digits + ",=+% €\"'", min_size=0, max_size=12)


@given(st.lists(st.tuples(_text, _text), max_size=8))
def test_labels_round_trip_through_the_agents_encoding(pairs):
    # The agent percent-encodes each key and value once before joining them with "=" and ",";
    # trimming happens before decoding, so encoded spaces survive, as in profefe.
    raw = ",".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    want = sorted(((k, v) for k, v in pairs if k), key=lambda kv: kv[0])
    assert [(lb.key, lb.value) for lb in Labels.parse(raw)] == want


@given(st.text(max_size=40))
def test_labels_parse_never_crashes(raw):
    try:
        labels = Labels.parse(raw)
    except BadRequest as exc:
        assert str(exc).startswith('bad "labels"')
    else:
        assert all(lb.key for lb in labels)


def test_labels_includes_is_an_and_of_pairs():
    have = Labels.parse("a=1,b=2,b=3")
    assert have.includes(Labels.parse("b=3,a=1"))
    assert have.includes(Labels())
    assert not have.includes(Labels.parse("a=1,c=1"))


@pytest.mark.parametrize(
    "raw, want",
    [
        ("2026-01-01T21:14:00", datetime(2026, 1, 1, 21, 14, tzinfo=timezone.utc)),
        ("2026-01-01T21:14:00.999999999", datetime(2026, 1, 1, 21, 14, tzinfo=timezone.utc)),
        ("2026-01-01T21:14:00Z", datetime(2026, 1, 1, 21, 14, tzinfo=timezone.utc)),
        ("2026-01-01t21:14:00z", datetime(2026, 1, 1, 21, 14, tzinfo=timezone.utc)),
        ("2026-01-01T23:44:00+02:30", datetime(2026, 1, 1, 21, 14, tzinfo=timezone.utc)),
        ("2026-01-01T00:14:00-21:00", datetime(2026, 1, 1, 21, 14, tzinfo=timezone.utc)),
        (" 2026-01-01T21:14:00 ", datetime(2026, 1, 1, 21, 14, tzinfo=timezone.utc)),
    ],
)
def test_parse_time(raw, want):
    assert parse_time("from", raw) == want


@pytest.mark.parametrize(
    "raw", ["", "2026-01-01", "2026-01-01 21:14:00", "2026-02-30T00:00:00", "2026-01-01T24:00:00",
            "2026-01-01T21:14:00+0200", "1767302040", "2026-01-01T21:14", "2026-01-01T21:14:00.Z"],
)
def test_parse_time_refuses(raw):
    with pytest.raises(BadRequest, match=r'^bad "to" .*time in unsupported format'):
        parse_time("to", raw)


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)))
def test_format_then_parse_is_the_second(moment):
    assert parse_time("t", format_time(moment)) == moment.replace(microsecond=0)


def test_ids_shape():
    ids = {new_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == 20 and is_id(i) and "+" not in i for i in ids)


def test_ids_sort_by_time():
    early, late = new_id(1_700_000_000), new_id(1_700_000_001)
    assert early < late
    assert id_time(late) - id_time(early) == timedelta(seconds=1)


def test_ids_carry_their_time():
    now = time.time()
    assert id_time(new_id(now)) == datetime.fromtimestamp(int(now), tz=timezone.utc)


@pytest.mark.parametrize("raw", ["", "abc", "A" * 20, "w" * 20, "0" * 19, "0" * 21, "0000000000000000000+"])
def test_is_id_refuses(raw):
    assert not is_id(raw)


def test_stored_profile_meta_is_the_one_init_builds():
    at = datetime(2026, 3, 1, 12, 0, 7, tzinfo=timezone.utc)
    values = dict(id=new_id(), service="svc", type=ProfileType.CPU, labels=Labels.of([("a", "1")]),
                  created_at=at, received_at=at + timedelta(seconds=2), size=10, signature="s", totals=(1, 2))
    stored = ProfileMeta.stored(**values)
    assert stored == ProfileMeta(**values)
    assert vars(stored) == {f.name: values[f.name] for f in fields(ProfileMeta)}
    with pytest.raises(FrozenInstanceError):
        stored.size = 11  # type: ignore[misc]


def test_profile_meta_normalises_what_other_callers_pass():
    local = datetime(2026, 3, 1, 13, 0, 7, 250_000, tzinfo=timezone(timedelta(hours=1)))
    meta = ProfileMeta(new_id(), "svc", ProfileType.CPU, Labels(), local, local, 1)
    assert meta.created_at == meta.received_at == datetime(2026, 3, 1, 12, 0, 7, tzinfo=timezone.utc)
    assert meta.created_at.tzinfo is timezone.utc
