"""The compactor's pure parts: durations, horizons, lag; and the query planner's interval maths."""
from __future__ import annotations


import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.compactor import schedule
from services.compactor.config import CompactorConfig
from shared.settings import parse_duration, parse_service_duration
from services.query_api.merge_plan import _raw_intervals, whole
from shared.windows import DAY, HOUR, HourState

NOW = 1_780_000_000 + 1234  # not on an hour boundary


@pytest.mark.parametrize("raw, seconds", [("90s", 90), ("15m", 900), ("36h", 129_600), ("7d", 604_800),
                                          ("2w", 1_209_600), ("1d12h", 129_600), ("300", 300), (" 5M ", 300)])
def test_durations(raw, seconds):
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize("raw", ["", "d", "7x", "7d-", "-1d", "1.5h", "7 d"])
def test_bad_durations(raw):
    with pytest.raises(ValueError, match="not like"):
        parse_duration(raw)


def test_service_durations():
    assert parse_service_duration("checkout=2d") == ("checkout", 172_800)
    with pytest.raises(ValueError, match="SERVICE=DURATION"):
        parse_service_duration("=2d")


def test_config_validates_itself():
    with pytest.raises(ValueError, match="raw_retention must be positive"):
        CompactorConfig(raw_retention=0)
    with pytest.raises(ValueError, match="raw retention of 'a'"):
        CompactorConfig(raw_retention_for=(("a", 0),))
    assert CompactorConfig(raw_retention_for=(("a", 5),)).raw_retention_of("a") == 5
    assert CompactorConfig().raw_retention_of("b") == 7 * DAY


def test_horizon():
    cfg = CompactorConfig(grace=300, raw_retention=2 * DAY, raw_retention_for=(("svc", HOUR),),
                          window_retention=10 * DAY)
    h = schedule.horizon(NOW + 0.9, cfg)
    assert h.now == NOW and h.closed_before == NOW - 300
    assert h.windows_before % DAY == 0 and NOW - 11 * DAY < h.windows_before <= NOW - 10 * DAY
    assert h.raw_before % HOUR == 0 and NOW - 2 * DAY - HOUR < h.raw_before <= NOW - 2 * DAY
    assert h.raw_cutoffs() == [("svc", (NOW - HOUR) // HOUR * HOUR), (None, h.raw_before)]


def test_lag_is_from_the_end_of_the_oldest_pending_hour():
    h = schedule.horizon(NOW, CompactorConfig())
    hour = NOW // HOUR * HOUR - 5 * HOUR
    assert schedule.lag(h, []) == 0
    assert schedule.lag(h, [HourState("s", hour + HOUR, 1), HourState("s", hour, 1)]) == NOW - hour - HOUR


def test_whole_periods_are_inclusive_at_both_ends():
    assert list(whole(0, 3599, HOUR)) == [0]
    assert list(whole(0, 3598, HOUR)) == []
    assert list(whole(1, 7199, HOUR)) == [3600]
    assert list(whole(3600, 3600 + DAY - 1, DAY)) == []
    assert list(whole(0, 2 * DAY, DAY)) == [0, DAY]


@given(st.integers(0, 10 * DAY), st.integers(0, 10 * DAY), st.sets(st.integers(0, 240)))
def test_raw_intervals_are_the_edges_and_the_needed_hours(a, b, picked):
    start, end = min(a, b), max(a, b)
    hours = whole(start, end, HOUR)
    if not hours:
        return
    needed = {h for h in (i * HOUR for i in picked) if h in hours}
    intervals = _raw_intervals(start, end, hours, needed)
    for (lo, hi), nxt in zip(intervals, intervals[1:] + [None]):
        assert start <= lo <= hi <= end
        if nxt is not None:
            assert hi + 1 < nxt[0]  # sorted, disjoint, and adjacent ones joined
    probe = set(range(start, end + 1, 1013)) | {start, end}
    in_intervals = {s for s in probe if any(lo <= s <= hi for lo, hi in intervals)}
    wanted = {s for s in probe if s < hours[0] or s >= hours[-1] + HOUR or s - s % HOUR in needed}
    assert in_intervals == wanted
