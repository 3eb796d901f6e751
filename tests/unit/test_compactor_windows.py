"""The compactor and the merge planner against the embedded wiring (SQLite + blob folder), with
the compactor's clock injected.

The heart is the equivalence property: a merge served through windows is the same profile
(same stacks, same totals) as merging every raw profile, whatever the range and the filter, with
windows clean, stale, missing or pruned.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services import wiring
from services.compactor.config import CompactorConfig
from services.compactor.worker import Compactor
from services.roles import ServeRole
from services.query_api.config import QueryConfig
from shared import pprof
from shared.model import Labels, ProfileType, blob_key, format_time
from shared.windows import DAY, HOUR, Series, epoch, from_epoch

TESTDATA = Path(__file__).resolve().parents[1] / "testdata"
FIXTURES = [(TESTDATA / f"cpu-{i}.pb.gz").read_bytes() for i in range(1, 11)]
SIG = "cpu/nanoseconds:samples/count,cpu/nanoseconds"
SERVICE = "shop"
DAY0 = epoch(datetime(2026, 3, 2, tzinfo=timezone.utc))
LABELS = ["env=prod,zone=a", "env=prod,zone=b", "env=dev"]
FILTERS = ["", "env=prod", "zone=a", "env=prod,zone=b", "env=dev", "zone=c"]


def profile_at(at: int, n: int) -> bytes:
    p = pprof.parse(FIXTURES[n % len(FIXTURES)])
    p.time_nanos = at * 1_000_000_000
    return pprof.write(p)


class Deployment:
    """`profefe serve`'s app over one data folder, with windows on and off, and its compactor."""

    def __init__(self, data_dir: Path, *, now: int, cfg: CompactorConfig | None = None) -> None:
        serve = ServeRole(data_dir=data_dir)
        self.ports = wiring.open_embedded(serve)
        self.client = wiring.embedded_app(self.ports, serve).test_client()
        raw_only = replace(serve, query=QueryConfig(use_windows=False))
        self.raw_client = wiring.embedded_app(self.ports, raw_only).test_client()
        self.now = now
        self.compactor = Compactor(self.ports.windows, self.ports.blobs, cfg or CompactorConfig(),
                                   clock=lambda: self.now)
        self.n = 0

    def post(self, at: int, labels: str, service: str = SERVICE) -> str:
        self.n += 1
        r = self.client.post(f"/api/0/profiles?service={service}&type=cpu&labels={labels}",
                             data=profile_at(at, self.n))
        assert r.status_code == 200, r.get_data()
        return r.get_json()["body"]["id"]

    def merge(self, start: int, end: int, labels: str = "", *, windows: bool = True, extra: str = ""):
        client = self.client if windows else self.raw_client
        r = client.get(f"/api/0/profiles/merge?service={SERVICE}&type=cpu&labels={labels}"
                       f"&from={format_time(from_epoch(start))[:-1]}&to={format_time(from_epoch(end))[:-1]}{extra}")
        return r.status_code, (canonical(r.get_data()) if r.status_code == 200 else r.get_json()["error"])

    def flame(self, start: int, end: int, labels: str = "", *, windows: bool = True, agg: str = "mean"):
        client = self.client if windows else self.raw_client
        r = client.get(f"/api/0/flamegraph?service={SERVICE}&type=cpu&labels={labels}&aggregation={agg}"
                       f"&from={format_time(from_epoch(start))[:-1]}&to={format_time(from_epoch(end))[:-1]}")
        return r.status_code, r.get_json()

    def plan_inputs(self, start: int, end: int, labels: str = ""):
        from services.query_api import merge_plan
        from shared.model import Query
        q = Query(SERVICE, ProfileType.CPU, Labels.parse(labels), from_epoch(start), from_epoch(end))
        return merge_plan.plan_merge(self.ports.meta, self.ports.windows, q)

    def close(self) -> None:
        self.ports.close()


def canonical(data: bytes):
    """What a merge must agree on: every (stack, labels) with its values, and the header sums."""
    p = pprof.parse(data)
    st = p.string_table
    funcs = {f.id: (st[f.name], st[f.filename]) for f in p.function}
    locs = {loc.id: tuple((funcs[ln.function_id], ln.line) for ln in loc.line) for loc in p.location}
    samples: Counter = Counter()
    for s in p.sample:
        key = (tuple(locs[i] for i in s.location_id),
               tuple(sorted((st[lb.key], st[lb.str], lb.num) for lb in s.label)))
        for i, v in enumerate(s.value):
            samples[(key, i)] += v
    return {"samples": +samples, "totals": pprof.totals(p), "duration": p.duration_nanos,
            "period": p.period, "time": p.time_nanos, "types": pprof.sample_types(p)}


@pytest.fixture
def deployment(tmp_path):
    made = []

    def make(**kw) -> Deployment:
        made.append(Deployment(tmp_path / f"data{len(made)}", **kw))
        return made[-1]

    yield make
    for d in made:
        d.close()


def test_a_closed_hour_becomes_one_window_and_a_rerun_changes_nothing(deployment):
    d = deployment(now=DAY0 + 2 * HOUR + 301)
    for i in range(4):
        d.post(DAY0 + HOUR + i * 600, "env=prod")
    d.post(DAY0 + 2 * HOUR + 5, "env=prod")  # the open hour (grace not over)
    report = d.compactor.run_pass()
    assert (report.hours, report.days, report.rebuilt) == (1, 0, 0)
    s = Series.of(SERVICE, ProfileType.CPU, Labels.parse("env=prod"), SIG)
    [w] = d.ports.windows.windows([s.id], HOUR, DAY0, DAY0 + DAY)
    assert (w.start, w.profiles, w.built_from) == (DAY0 + HOUR, 4, 4)
    assert d.compactor.run_pass().hours == 0
    assert d.ports.windows.windows([s.id], HOUR, DAY0, DAY0 + DAY) == [w]
    assert d.compactor.stats.windows_built == 1 and d.compactor.stats.pending == 0
    plan = d.plan_inputs(DAY0, DAY0 + 3 * HOUR)
    assert [x.start for x in plan.windows] == [DAY0 + HOUR] and len(plan.raw) == 1
    assert d.merge(DAY0, DAY0 + 3 * HOUR) == d.merge(DAY0, DAY0 + 3 * HOUR, windows=False)


def test_a_late_profile_makes_the_window_stale_until_rebuilt(deployment):
    d = deployment(now=DAY0 + DAY)
    for i in range(3):
        d.post(DAY0 + i * 900, "env=prod")
    d.compactor.run_pass()
    d.post(DAY0 + 3000, "env=prod")
    plan = d.plan_inputs(DAY0, DAY0 + HOUR - 1)
    assert plan.windows == [] and len(plan.raw) == 4  # never the stale window
    assert d.merge(DAY0, DAY0 + HOUR - 1) == d.merge(DAY0, DAY0 + HOUR - 1, windows=False)
    report = d.compactor.run_pass()
    assert (report.hours, report.rebuilt) == (1, 1)
    plan = d.plan_inputs(DAY0, DAY0 + HOUR - 1)
    assert len(plan.windows) == 1 and plan.raw == []
    assert d.merge(DAY0, DAY0 + HOUR - 1) == d.merge(DAY0, DAY0 + HOUR - 1, windows=False)
    # The replaced blob is gone; only the current window's blob is left.
    assert len(list((d.ports.blobs.root / "windows").rglob("hour-*"))) == 1


def reads_of(d: Deployment, monkeypatch) -> list[str]:
    """The blob keys the compactor reads from now on (the store still answers them)."""
    blobs, keys = d.compactor.builder.blobs, []
    read, read_many = blobs.get, blobs.get_many

    def get(key: str) -> bytes:
        keys.append(key)
        return read(key)

    def get_many(asked):
        keys.extend(asked)
        return read_many(asked)

    monkeypatch.setattr(blobs, "get", get)
    monkeypatch.setattr(blobs, "get_many", get_many)
    return keys


def test_late_profiles_are_folded_into_the_window_not_merged_again(deployment, monkeypatch):
    d = deployment(now=DAY0 + DAY)
    for i in range(5):
        d.post(DAY0 + i * 600, "env=prod")
    d.compactor.run_pass()
    late = [d.post(DAY0 + 3100, "env=prod"), d.post(DAY0 + 3200, "env=prod")]
    keys = reads_of(d, monkeypatch)
    assert d.compactor.run_pass().rebuilt == 1
    # The old window and the two late profiles, not the five it already held.
    assert len([k for k in keys if "/hour-" in k]) == 1
    assert sorted(k for k in keys if not k.startswith("windows/")) == sorted(blob_key(pid) for pid in late)
    [w] = d.plan_inputs(DAY0, DAY0 + HOUR - 1).windows
    assert (w.profiles, w.built_from) == (7, 7)
    assert d.merge(DAY0, DAY0 + HOUR - 1) == d.merge(DAY0, DAY0 + HOUR - 1, windows=False)


def test_an_hour_holding_rows_without_a_version_is_merged_whole(deployment, monkeypatch):
    import sqlalchemy as sa

    d = deployment(now=DAY0 + DAY)
    for i in range(3):
        d.post(DAY0 + i * 600, "env=prod")
    d.compactor.run_pass()
    engine = sa.create_engine(d.ports.windows.url)
    with engine.begin() as conn:  # as a row stored before profiles had versions
        conn.execute(sa.text("UPDATE profiles SET version = NULL WHERE created_at = :at"), {"at": DAY0})
    engine.dispose()
    d.post(DAY0 + 3000, "env=prod")
    keys = reads_of(d, monkeypatch)
    d.compactor.run_pass()
    assert len([k for k in keys if not k.startswith("windows/")]) == 4
    assert not [k for k in keys if "/hour-" in k]
    assert d.merge(DAY0, DAY0 + HOUR - 1) == d.merge(DAY0, DAY0 + HOUR - 1, windows=False)


def test_a_day_of_clean_hours_becomes_one_daily_window(deployment):
    d = deployment(now=DAY0 + DAY + HOUR)
    for h in (0, 5, 23):
        d.post(DAY0 + h * HOUR + 10, "env=prod")
    report = d.compactor.run_pass()
    assert (report.hours, report.days) == (3, 1)
    plan = d.plan_inputs(DAY0, DAY0 + DAY - 1)
    assert [(w.span, w.profiles) for w in plan.windows] == [(DAY, 3)] and plan.raw == []
    d.post(DAY0 + 5 * HOUR + 20, "env=prod")
    plan = d.plan_inputs(DAY0, DAY0 + DAY - 1)
    assert sorted(w.start - DAY0 for w in plan.windows) == [0, 23 * HOUR] and len(plan.raw) == 2
    assert d.merge(DAY0, DAY0 + DAY - 1) == d.merge(DAY0, DAY0 + DAY - 1, windows=False)
    report = d.compactor.run_pass()
    assert (report.hours, report.days, report.rebuilt) == (1, 1, 2)
    assert [(w.span, w.profiles) for w in d.plan_inputs(DAY0, DAY0 + DAY - 1).windows] == [(DAY, 4)]


def test_a_daily_window_waits_until_the_last_hour_of_its_day_is_closed(deployment):
    d = deployment(now=DAY0 + DAY + 120)  # 00:02 the next day: late uploads may still land at 23:xx
    for h in (8, 15):
        d.post(DAY0 + h * HOUR + 10, "env=prod")
    report = d.compactor.run_pass()
    assert (report.hours, report.days, len(report.pending)) == (2, 0, 0)  # an idle pass, no day yet
    d.now = DAY0 + DAY + 300
    assert d.compactor.run_pass().days == 1


def test_limit_reads_raw_profiles(deployment):
    d = deployment(now=DAY0 + DAY)
    ids = [d.post(DAY0 + i * 60, "env=prod") for i in range(3)]
    d.compactor.run_pass()
    want = d.client.get(f"/api/0/profiles/{ids[1]}+{ids[2]}").get_data()
    assert d.merge(DAY0, DAY0 + HOUR - 1, extra="&limit=2") == (200, canonical(want))


def test_retention_keeps_raw_until_compacted_then_serves_windows(deployment):
    cfg = CompactorConfig(raw_retention=2 * DAY, raw_retention_for=(("other", 10 * DAY),), window_retention=30 * DAY)
    d = deployment(now=DAY0 + HOUR + 301, cfg=cfg)
    old = [d.post(DAY0 + i * 600, "env=prod") for i in range(3)]
    kept = d.post(DAY0 + 10, "env=prod", service="other")
    before = d.merge(DAY0, DAY0 + HOUR - 1, windows=False)
    d.compactor.run_pass()
    d.now = DAY0 + 3 * DAY
    report = d.compactor.run_pass()
    assert report.raw_pruned == 3
    for pid in old:
        assert d.client.get(f"/api/0/profiles/{pid}").status_code == 404
    assert d.client.get(f"/api/0/profiles/{kept}").status_code == 200
    assert d.merge(DAY0, DAY0 + HOUR - 1) == before
    assert d.merge(DAY0, DAY0 + HOUR - 1, windows=False)[0] == 404
    # A late profile for the pruned hour: the rebuild adds it to the old window, never twice.
    late = d.post(DAY0 + 1800, "env=prod")
    # Until the rebuild, the pruned hour is its old window plus the late profile, never one of them.
    while_stale = d.merge(DAY0, DAY0 + HOUR - 1)
    assert while_stale[0] == 200 and while_stale != before
    assert d.plan_inputs(DAY0, DAY0 + HOUR - 1).inputs == 2
    d.compactor.run_pass()
    assert d.client.get(f"/api/0/profiles/{late}").status_code == 404
    assert d.merge(DAY0, DAY0 + HOUR - 1) == while_stale
    [w] = d.plan_inputs(DAY0, DAY0 + HOUR - 1).windows
    assert w.profiles == 4
    d.compactor.run_pass()
    assert d.plan_inputs(DAY0, DAY0 + HOUR - 1).windows[0].profiles == 4
    d.now = DAY0 + 40 * DAY
    report = d.compactor.run_pass()
    assert report.windows_dropped == 4  # the hour and its day, of both services
    assert report.raw_pruned == 1  # "other" keeps its raw profiles longer, but not for ever
    assert d.merge(DAY0, DAY0 + HOUR - 1)[0] == 404
    assert not list((d.ports.blobs.root / "windows").rglob("*-*"))


def test_an_uncompacted_hour_is_not_pruned(deployment):
    d = deployment(now=DAY0 + 10 * DAY, cfg=CompactorConfig(raw_retention=DAY))
    pid = d.post(DAY0 + 10, "env=prod")
    assert d.ports.windows.prune_raw(DAY0 + 5 * DAY, DAY0 - DAY, service=SERVICE) == []
    assert d.client.get(f"/api/0/profiles/{pid}").status_code == 200


# The equivalence property ------------------------------------------------------------------


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    """Three series over a whole day and its ragged neighbours; compacted at two moments; then
    late profiles that leave some hours and one day stale, and a tail never compacted."""
    d = Deployment(tmp_path_factory.mktemp("equivalence"), now=DAY0 + DAY + 6 * HOUR)
    start, end = DAY0 - 3 * HOUR, DAY0 + DAY + 10 * HOUR
    for i, labels in enumerate(LABELS):
        step = 1500 + 700 * i
        for at in range(start + 97 * i, end, step):
            if (at // HOUR) % 7 != i:  # each series leaves some hours empty
                d.post(at, labels)
    d.compactor.run_pass()
    d.post(DAY0 + 4 * HOUR + 59, LABELS[0])  # stale hour inside a compacted day
    d.post(DAY0 + DAY + 2 * HOUR, LABELS[1])  # stale hour of the second day
    d.post(DAY0 - 2 * HOUR + 3599, LABELS[2])
    d.now = DAY0 + DAY + 9 * HOUR + 1
    d.post(DAY0 + DAY + 7 * HOUR, LABELS[2])  # lands before the second pass: compacted
    d.compactor.run_pass()
    d.post(DAY0 + DAY + 7 * HOUR + 5, LABELS[0])  # after it: stale
    yield d, start, end
    d.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=st.integers(-2 * HOUR, 40 * HOUR), b=st.integers(-2 * HOUR, 40 * HOUR), labels=st.sampled_from(FILTERS),
       align=st.sampled_from([None, "start", "end", "both"]))
def test_windows_answer_the_same_profile_as_raw(populated, a, b, labels, align):
    d, start, _ = populated
    lo, hi = sorted((start + a, start + b))
    if align in ("start", "both"):
        lo -= lo % HOUR
    if align in ("end", "both"):
        hi = hi - hi % HOUR + HOUR - 1
    assert d.merge(lo, hi, labels) == d.merge(lo, hi, labels, windows=False)


def test_the_populated_data_does_use_every_kind_of_input(populated):
    d, start, end = populated
    plan = d.plan_inputs(start, end)
    spans = Counter(w.span for w in plan.windows)
    assert spans[DAY] >= 2 and spans[HOUR] > 10 and len(plan.raw) > 10
    assert d.merge(start, end) == d.merge(start, end, windows=False)


MEAN = "&aggregation=mean"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=st.integers(-2 * HOUR, 40 * HOUR), b=st.integers(-2 * HOUR, 40 * HOUR), labels=st.sampled_from(FILTERS))
def test_windows_and_raw_give_the_same_mean_for_the_merge_and_the_flame_graph(populated, a, b, labels):
    d, start, _ = populated
    lo, hi = sorted((start + a, start + b))
    assert d.merge(lo, hi, labels, extra=MEAN) == d.merge(lo, hi, labels, windows=False, extra=MEAN)
    assert d.flame(lo, hi, labels) == d.flame(lo, hi, labels, windows=False)


def test_the_mean_through_windows_divides_by_every_profile_the_windows_hold(populated):
    d, start, end = populated
    assert d.plan_inputs(start, end).windows  # the whole range is mostly windows
    status, mean = d.flame(start, end)
    _, summed = d.flame(start, end, agg="sum")
    _, raw_sum = d.flame(start, end, windows=False, agg="sum")
    assert status == 200 and summed == raw_sum
    profiles = summed["body"]["profiles"]
    assert profiles > 100 and mean["body"]["profiles"] == profiles
    assert mean["body"]["total"] == round(summed["body"]["total"] / profiles, 3)
    assert d.merge(start, end, extra=MEAN) == d.merge(start, end, windows=False, extra=MEAN)
    assert d.merge(start, end, extra=MEAN) != d.merge(start, end)


def test_a_window_replaced_while_being_read_is_planned_again(deployment, monkeypatch):
    from shared.errors import NotFound

    d = deployment(now=DAY0 + DAY)
    for i in range(3):
        d.post(DAY0 + i * 600, "env=prod")
    d.compactor.run_pass()
    want = d.merge(DAY0, DAY0 + HOUR - 1, windows=False)
    read, read_many, gone = d.ports.blobs.get, d.ports.blobs.get_many, []

    def get(key: str) -> bytes:
        if key.startswith("windows/") and not gone:
            gone.append(key)  # as if a rebuild deleted it between plan and read
            raise NotFound(f"no blob {key!r}")
        return read(key)

    def get_many(keys):
        for key in keys:
            if key.startswith("windows/") and not gone:
                yield get(key)
            else:
                yield from read_many([key])

    monkeypatch.setattr(d.ports.blobs, "get", get)
    monkeypatch.setattr(d.ports.blobs, "get_many", get_many)
    assert d.merge(DAY0, DAY0 + HOUR - 1) == want
    assert gone


def test_an_orphan_window_blob_is_swept_once_old_enough(deployment):
    """A compactor killed between writing a window's blob and switching the row leaves a blob no
    row points to; a later pass deletes it once it is `orphan_age` old, and nothing else."""
    d = deployment(now=DAY0 + DAY, cfg=CompactorConfig(orphan_age=HOUR))
    for i in range(3):
        d.post(DAY0 + i * 900, "env=prod")
    assert d.compactor.run_pass().orphans_swept == 0
    root = d.ports.blobs.root
    [live] = [p.relative_to(root).as_posix() for p in (root / "windows").rglob("hour-*")]
    old, young = "windows/dead/hour-0-aaaa", "windows/dead/hour-0-bbbb"
    for key in (old, young):
        d.ports.blobs.put(key, b"half a build")
    d.now += HOUR  # the next sweep is due
    for key, age in ((live, 2 * HOUR), (old, 2 * HOUR), (young, 60)):
        os.utime(root / key, (d.now - age, d.now - age))
    before = d.merge(DAY0, DAY0 + HOUR - 1)
    report = d.compactor.run_pass()
    assert report.orphans_swept == 1 and d.compactor.stats.orphans_swept == 1
    left = {p.relative_to(root).as_posix() for p in (root / "windows").rglob("hour-*")}
    assert left == {live, young}
    assert d.merge(DAY0, DAY0 + HOUR - 1) == before
    assert d.compactor.run_pass().orphans_swept == 0  # not due again for an hour
