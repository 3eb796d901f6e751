"""The WindowStore contract, with the counters `MetaStore.put` keeps for it.

A shared PostgreSQL holds other cases' rows, so every case works in its own service (`ns`) at its
own random hour, and only looks at its own series. A case that prunes or drops across services
would delete the others' rows as they run: it is marked `every_service` and gets a database alone.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from shared.adapters.windows_sql import SqlWindowStore
from shared.model import Labels, ProfileMeta, ProfileType, Query, new_id
from shared.ports import WindowStore
from shared.windows import DAY, HOUR, Series, Window, epoch, from_epoch

SIG = "cpu/nanoseconds:samples/count,cpu/nanoseconds"


@pytest.fixture
def windows(meta_store):
    store = SqlWindowStore(meta_store.url)
    yield store
    store.close()


@pytest.fixture
def hour() -> int:
    """A random whole hour in 2001..2090 (every day of it lies before 'now')."""
    start = epoch(datetime(2001, 1, 1, tzinfo=timezone.utc))
    return start + random.randrange(0, 89 * 365 * 24) * HOUR


def meta(service, at: int, *, labels="env=prod", ptype=ProfileType.CPU, signature=SIG, pid=None):
    moment = from_epoch(at)
    return ProfileMeta(id=pid or new_id(at), service=service, type=ptype, labels=Labels.parse(labels),
                       created_at=moment, received_at=moment + timedelta(seconds=1), size=10,
                       signature=signature if ptype.is_pprof else "")


def series_of(service, labels="env=prod", ptype=ProfileType.CPU, signature=SIG) -> Series:
    return Series.of(service, ptype, Labels.parse(labels), signature)


def window(s: Series, start: int, built_from: int, *, span=HOUR, key="windows/x/1", profiles=1) -> Window:
    return Window(s.id, start, span, key, built_from, profiles, 10, start + span)


def versions(store, s: Series, start: int, end: int) -> dict[int, int]:
    return {st.hour: st.version for st in store.hour_states([s.id], start, end)}


def test_is_a_window_store(windows):
    assert isinstance(windows, WindowStore)


def test_put_counts_each_new_profile_in_its_series_hour(meta_store, windows, ns, hour):
    a, b = series_of(ns), series_of(ns, "env=prod,zone=b")
    first = meta(ns, hour)
    meta_store.put([first, meta(ns, hour + 3599), meta(ns, hour + HOUR), meta(ns, hour, labels="zone=b,env=prod")])
    assert versions(windows, a, hour, hour + DAY) == {hour: 2, hour + HOUR: 1}
    assert versions(windows, b, hour, hour + DAY) == {hour: 1}
    meta_store.put([first])  # a redelivery is no new data
    assert versions(windows, a, hour, hour) == {hour: 2}


def test_a_batch_mixing_stored_and_new_profiles_counts_only_the_new(meta_store, windows, ns, hour):
    a = series_of(ns)
    stored = meta(ns, hour)
    meta_store.put([stored])
    fresh = [meta(ns, hour + 60), meta(ns, hour + HOUR)]
    meta_store.put([stored, *fresh, fresh[0]])
    assert versions(windows, a, hour, hour + DAY) == {hour: 2, hour + HOUR: 1}
    assert meta_store.get_many([stored.id]) == [stored]


def test_series_is_the_exact_label_set_and_signature(meta_store, windows, ns, hour):
    meta_store.put([
        meta(ns, hour, labels="a=1,b=2"), meta(ns, hour, labels="b=2,a=1"), meta(ns, hour, labels="a=1"),
        meta(ns, hour, labels="a=1", signature="other"), meta(ns, hour, ptype=ProfileType.HEAP),
        meta(ns, hour, ptype=ProfileType.TRACE),
    ])
    found = windows.series_of(ns, ProfileType.CPU, Labels.parse("a=1"))
    assert sorted((str(s.labels), s.signature) for s in found) == sorted([("a=1", "other"), ("a=1", SIG), ("a=1,b=2", SIG)])
    assert windows.series_of(ns, ProfileType.CPU, Labels.parse("b=2")) == [series_of(ns, "a=1,b=2")]
    assert windows.series_by_id(series_of(ns, "a=1,b=2").id) == series_of(ns, "a=1,b=2")
    assert windows.series_of(ns, ProfileType.TRACE, Labels()) == []


def test_series_of_active_in_keeps_the_series_with_a_counter_in_those_hours(meta_store, windows, ns, hour):
    meta_store.put([meta(ns, hour, labels="a=1"), meta(ns, hour + 2 * HOUR + 59, labels="a=2")])
    assert len(windows.series_of(ns, ProfileType.CPU, Labels())) == 2
    assert windows.series_of(ns, ProfileType.CPU, Labels(), active_in=(hour + HOUR, hour + 2 * HOUR)) == [
        series_of(ns, "a=2")]
    assert windows.series_of(ns, ProfileType.CPU, Labels(), active_in=(hour + HOUR, hour + HOUR)) == []
    assert windows.series_of(ns, ProfileType.CPU, Labels.parse("a=1"), active_in=(hour, hour + 2 * HOUR)) == [
        series_of(ns, "a=1")]


def test_raw_in_is_inclusive_at_both_ends(meta_store, windows, ns, hour):
    inside = [meta(ns, hour), meta(ns, hour + 3599)]
    meta_store.put([*inside, meta(ns, hour - 1), meta(ns, hour + HOUR)])
    assert sorted(windows.raw_in(series_of(ns).id, hour, hour + 3599)) == sorted((m.id, 10, 2) for m in inside)


def test_each_raw_profile_carries_its_counter_after_the_put_that_stored_it(meta_store, windows, ns, hour):
    first, second, third = meta(ns, hour), meta(ns, hour + 1), meta(ns, hour + 2)
    meta_store.put([first])
    meta_store.put([second, third])
    meta_store.put([first])  # stored already: no new version
    found = {r.id: r.version for r in windows.raw_in(series_of(ns).id, hour, hour + 3599)}
    assert found == {first.id: 1, second.id: 3, third.id: 3}
    [state] = windows.hour_states([series_of(ns).id], hour, hour)
    assert state.version == 3


def mine(states, s: Series):
    return [(st.hour, st.version) for st in states if st.series_id == s.id]


def test_pending_until_a_clean_window_and_again_when_a_late_profile_lands(meta_store, windows, ns, hour):
    s = series_of(ns)
    meta_store.put([meta(ns, hour)])
    assert mine(windows.pending_hours(hour + HOUR, hour, 10_000), s) == [(hour, 1)]
    assert mine(windows.pending_hours(hour + HOUR - 1, hour, 10_000), s) == []  # not closed yet
    assert mine(windows.pending_hours(hour + HOUR, hour + 1, 10_000), s) == []  # before not_before
    with windows.claim_hour(s.id, hour) as claim:
        assert claim.state.version == 1 and claim.window is None
        claim.save(window(s, hour, 1, key="windows/a/1"))
    assert claim.replaced is None
    assert mine(windows.pending_hours(hour + HOUR, hour, 10_000), s) == []
    assert windows.windows([s.id], HOUR, hour, hour) == [window(s, hour, 1, key="windows/a/1")]

    meta_store.put([meta(ns, hour + 10)])
    assert mine(windows.pending_hours(hour + HOUR, hour, 10_000), s) == [(hour, 2)]
    with windows.claim_hour(s.id, hour) as claim:
        assert claim.window == window(s, hour, 1, key="windows/a/1")
        claim.save(window(s, hour, 2, key="windows/a/2", profiles=2))
    assert claim.replaced == "windows/a/1"
    assert windows.windows([s.id], HOUR, hour, hour)[0].profiles == 2


def test_claiming_a_missing_hour_gives_none(windows, ns, hour):
    with windows.claim_hour(series_of(ns).id, hour) as claim:
        assert claim is None


def test_a_claimed_hour_is_skipped_by_other_claimers_where_replicas_run(meta_store, windows, ns, hour):
    s = series_of(ns)
    meta_store.put([meta(ns, hour)])
    other = SqlWindowStore(meta_store.url)
    try:
        with windows.claim_hour(s.id, hour) as first:
            with other.claim_hour(s.id, hour) as second:
                # PostgreSQL serves replicas and locks; SQLite serves one process and does not.
                assert (second is None) == windows.locking
            first.save(window(s, hour, 1))
        with other.claim_hour(s.id, hour) as again:
            assert again is not None and again.window == window(s, hour, 1)
    finally:
        other.close()


def test_a_failed_build_leaves_the_old_window(meta_store, windows, ns, hour):
    s = series_of(ns)
    meta_store.put([meta(ns, hour)])
    with windows.claim_hour(s.id, hour) as claim:
        claim.save(window(s, hour, 1, key="windows/a/1"))
    with pytest.raises(RuntimeError):
        with windows.claim_hour(s.id, hour) as claim:
            raise RuntimeError("killed while merging")
    assert windows.windows([s.id], HOUR, hour, hour) == [window(s, hour, 1, key="windows/a/1")]


def test_a_day_is_pending_once_all_its_hours_are_clean(meta_store, windows, ns, hour):
    s = series_of(ns)
    day = hour - hour % DAY
    meta_store.put([meta(ns, day + 3 * HOUR), meta(ns, day + 3 * HOUR + 5), meta(ns, day + 7 * HOUR)])
    closed = day + DAY
    assert [d for d in windows.pending_days(closed, day, 10_000) if d[0] == s.id] == []
    with windows.claim_hour(s.id, day + 3 * HOUR) as claim:
        claim.save(window(s, day + 3 * HOUR, 2))
    assert [d for d in windows.pending_days(closed, day, 10_000) if d[0] == s.id] == []
    with windows.claim_hour(s.id, day + 7 * HOUR) as claim:
        claim.save(window(s, day + 7 * HOUR, 1))
    assert [d for d in windows.pending_days(closed, day, 10_000) if d[0] == s.id] == [(s.id, day)]
    assert [d for d in windows.pending_days(closed - 1, day, 10_000) if d[0] == s.id] == []
    with windows.claim_day(s.id, day) as claim:
        assert claim.clean and claim.built_from == 3
        assert [w.start for w in claim.hours] == [day + 3 * HOUR, day + 7 * HOUR]
        claim.save(window(s, day, claim.built_from, span=DAY))
    assert [d for d in windows.pending_days(closed, day, 10_000) if d[0] == s.id] == []
    meta_store.put([meta(ns, day + 7 * HOUR + 9)])  # the day goes stale with its hour
    with windows.claim_day(s.id, day) as claim:
        assert not claim.clean and claim.built_from == 4


def test_prune_raw_only_where_the_window_is_clean_and_never_bumps(meta_store, windows, ns, hour):
    s = series_of(ns)
    done, stale, trace = meta(ns, hour), meta(ns, hour + HOUR), meta(ns, hour, ptype=ProfileType.TRACE)
    meta_store.put([done, stale, trace])
    with windows.claim_hour(s.id, hour) as claim:
        claim.save(window(s, hour, 1))
    with windows.claim_hour(s.id, hour + HOUR) as claim:
        claim.save(window(s, hour + HOUR, 0))  # built before its profile arrived
    gone = {done.id, trace.id}
    assert set(windows.prune_raw(hour + 2 * HOUR, hour, service=ns)) == gone
    assert {m.id for m in meta_store.get_many([done.id, stale.id, trace.id])} == {stale.id}
    assert windows.prune_raw(hour + 2 * HOUR, hour, service=ns) == []  # the stale hour stays
    states = {st.hour: st for st in windows.hour_states([s.id], hour, hour + HOUR)}
    assert states[hour].version == 1 and states[hour].pruned
    assert states[hour + HOUR].version == 1 and not states[hour + HOUR].pruned
    assert not gone & {m.id for m in meta_store.get_many(list(gone))}


@pytest.mark.every_service
def test_a_service_is_listed_while_its_windows_last_after_its_raw_profiles_are_pruned(meta_store, windows, ns, hour):
    s = series_of(ns)
    meta_store.put([meta(ns, hour)])
    with windows.claim_hour(s.id, hour) as claim:
        claim.save(window(s, hour, 1, key=f"windows/{ns}/h"))
    assert windows.prune_raw(hour + HOUR, hour, service=ns) != []
    assert meta_store.find(Query(ns, None, Labels(), from_epoch(hour), from_epoch(hour + HOUR))) == []
    assert ns in meta_store.services()
    windows.drop_windows(hour + HOUR, limit=100_000)
    assert ns not in meta_store.services()


@pytest.mark.every_service
def test_prune_raw_per_service(meta_store, windows, ns, hour):
    kept, pruned = meta(ns + "-keep", hour, ptype=ProfileType.TRACE), meta(ns, hour, ptype=ProfileType.TRACE)
    meta_store.put([kept, pruned])
    assert pruned.id in windows.prune_raw(hour + HOUR, hour, other_than=[ns + "-keep"], limit=100_000)
    assert [m.id for m in meta_store.get_many([kept.id, pruned.id])] == [kept.id]


@pytest.mark.every_service
def test_drop_windows_and_the_counters_of_emptied_hours(meta_store, windows, ns, hour):
    s = series_of(ns)
    day = hour - hour % DAY
    m = meta(ns, day)
    meta_store.put([m])
    with windows.claim_hour(s.id, day) as claim:
        claim.save(window(s, day, 1, key=f"windows/{ns}/h"))
    with windows.claim_day(s.id, day) as claim:
        claim.save(window(s, day, 1, span=DAY, key=f"windows/{ns}/d"))
    assert [k for k in windows.drop_windows(day + DAY - 1, limit=100_000) if ns in k] == [f"windows/{ns}/h"]
    assert windows.windows([s.id], DAY, day, day) != []
    assert [k for k in windows.drop_windows(day + DAY, limit=100_000) if ns in k] == [f"windows/{ns}/d"]
    assert windows.windows([s.id], HOUR, day, day + DAY) == [] and windows.windows([s.id], DAY, day, day) == []
    assert versions(windows, s, day, day) == {day: 1}  # its raw profile is still there
    windows.prune_raw(day + DAY, day + DAY, service=ns)
    windows.drop_windows(day + DAY)
    assert versions(windows, s, day, day) == {}


def test_prune_raw_takes_whole_hours_a_day_at_a_time(meta_store, windows, ns, hour):
    s = series_of(ns)
    day = hour - hour % DAY
    first = [meta(ns, day + 3600 + i) for i in range(5)]
    second = [meta(ns, day + DAY + 7200 + i) for i in range(3)]
    meta_store.put([*first, *second])
    for h, n in ((day + HOUR, 5), (day + DAY + 2 * HOUR, 3)):
        with windows.claim_hour(s.id, h) as claim:
            claim.save(window(s, h, n))
    assert sorted(windows.prune_raw(day + 3 * DAY, day, service=ns, limit=2)) == sorted(m.id for m in first)
    assert sorted(windows.prune_raw(day + 3 * DAY, day, service=ns, limit=2)) == sorted(m.id for m in second)
    assert windows.prune_raw(day + 3 * DAY, day, service=ns, limit=2) == []


def test_referenced_names_the_keys_a_window_points_to(meta_store, windows, ns, hour):
    s = series_of(ns)
    meta_store.put([meta(ns, hour)])
    with windows.claim_hour(s.id, hour) as claim:
        claim.save(window(s, hour, 1, key=f"windows/{ns}/old"))
    with windows.claim_hour(s.id, hour) as claim:
        claim.save(window(s, hour, 1, key=f"windows/{ns}/new"))  # replaces the old one
    asked = [f"windows/{ns}/old", f"windows/{ns}/new", f"windows/{ns}/never"]
    assert windows.referenced(asked) == {f"windows/{ns}/new"}
    assert windows.referenced([]) == set()
