"""Pyroscope's read API, `querier.v1.QuerierService` over Connect, in both deployments (SQLite and
PostgreSQL): the calls Grafana's Pyroscope data source and `profilecli query` make, sent the way
they send them (Connect unary, protobuf or JSON), answered from the same store as the profefe API.

Grafana cannot be downloaded here and profilecli does not build here (docs/api.md says why), so
these requests stand in for both: the profile types, label names and values of the query editor,
the flame graph (SelectMergeStacktraces), the timeline (SelectSeries) and profilecli's
`query merge` (SelectMergeProfile) and `query series` (Series)."""
from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from services.query_api import querier_pb2 as pb
from shared import pprof
from tests.api import pprofs
from tests.api.helpers import upload

QUERIER = "/querier.v1.QuerierService/"
PROTO, JSON = "application/proto", "application/json"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms
HOUR_MS = 3_600_000
CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
SAMPLES = "process_cpu:samples:count:cpu:nanoseconds"
SHOP = '{service_name="shop"}'
RANGE = {"start": T0, "end": T0 + HOUR_MS - 1}


@pytest.fixture
def shop(api):
    """Three CPU profiles of `shop`: two of version 1.4 (10 ms and 30 ms), one of 1.5 (50 ms)."""
    for minute, version, value in ((1, "1.4", 10_000_000), (2, "1.4", 30_000_000), (3, "1.5", 50_000_000)):
        upload(api, service="shop", body=pprofs.cpu(value=value), labels=f"version={version}",
               created_at=f"2026-01-01T00:0{minute}:00")
    return api


def rpc(api, method: str, request: Any, response: Any = None, **headers: str) -> Any:
    """A protobuf Connect call that must succeed; its decoded answer."""
    r = api.request("POST", QUERIER + method, body=request.SerializeToString(),
                    headers={"Content-Type": PROTO, **headers})
    assert r.status == 200, r.data
    assert r.headers["Content-Type"] == PROTO
    if response is None:
        return r.data
    out = response()
    out.ParseFromString(r.data)
    return out


def rpc_json(api, method: str, body: dict[str, Any]) -> tuple[int, Any]:
    r = api.request("POST", QUERIER + method, body=json.dumps(body).encode(), headers={"Content-Type": JSON})
    assert r.headers["Content-Type"].startswith(JSON), r.headers
    return r.status, r.json


def flame_paths(graph: pb.FlameGraph) -> dict[tuple[str, ...], tuple[int, int]]:
    """Pyroscope's levels decoded as Grafana decodes them: call path -> (total, self); each node
    must lie within its parent."""
    out: dict[tuple[str, ...], tuple[int, int]] = {}
    above: list[tuple[int, int, tuple[str, ...]]] = []
    for level in graph.levels:
        v, x, here = list(level.values), 0, []
        assert len(v) % 4 == 0
        for i in range(0, len(v), 4):
            start, total, self_, name = x + v[i], v[i + 1], v[i + 2], graph.names[v[i + 3]]
            x = start + total
            parent = [p for s, t, p in above if s <= start and start + total <= s + t]
            assert parent or not above, f"{name} lies outside every node above it"
            path = (parent[0] if parent else ()) + (name,)
            out[path] = (total, self_)
            here.append((start, total, path))
        above = here
    return out


def test_profile_types_list_each_sample_type(shop):
    got = rpc(shop, "ProfileTypes", pb.ProfileTypesRequest(**RANGE), pb.ProfileTypesResponse)
    assert [t.ID for t in got.profile_types] == [CPU, SAMPLES]
    cpu = got.profile_types[0]
    assert (cpu.name, cpu.sample_type, cpu.sample_unit, cpu.period_type, cpu.period_unit) == (
        "process_cpu", "cpu", "nanoseconds", "cpu", "nanoseconds")
    later = rpc(shop, "ProfileTypes", pb.ProfileTypesRequest(start=T0 + HOUR_MS, end=T0 + 2 * HOUR_MS),
                pb.ProfileTypesResponse)
    assert list(later.profile_types) == []


def test_label_names_and_values_as_the_query_editor_asks(shop):
    names = rpc(shop, "LabelNames", pb.LabelNamesRequest(matchers=[SHOP], **RANGE), pb.LabelNamesResponse)
    assert list(names.names) == ["__name__", "__profile_type__", "service_name", "version"]
    assert list(rpc(shop, "LabelNames", pb.LabelNamesRequest(**RANGE), pb.LabelNamesResponse).names) == list(names.names)

    def values(name: str, *matchers: str) -> list[str]:
        req = pb.LabelValuesRequest(name=name, matchers=list(matchers), **RANGE)
        return list(rpc(shop, "LabelValues", req, pb.LabelValuesResponse).names)

    assert values("service_name") == ["shop"]
    assert values("service_name", f'{{__profile_type__="{CPU}"}}') == ["shop"]
    assert values("service_name", '{__name__="memory"}') == []
    assert values("version", f'{{service_name="shop", __profile_type__="{CPU}"}}') == ["1.4", "1.5"]
    assert values("__name__") == ["process_cpu"]
    assert values("__profile_type__", SHOP) == [CPU, SAMPLES]
    assert values("version", '{service_name="elsewhere"}') == []


def test_series_are_the_label_sets_profilecli_lists(shop):
    got = rpc(shop, "Series", pb.SeriesRequest(matchers=[SHOP], **RANGE), pb.SeriesResponse)
    sets = [{(lb.name, lb.value) for lb in s.labels} for s in got.labels_set]
    assert len(sets) == 4, sets  # two versions, two sample types each
    assert {("service_name", "shop"), ("__name__", "process_cpu"), ("__profile_type__", CPU), ("version", "1.5")} in sets
    req = pb.SeriesRequest(matchers=[f'{{__profile_type__="{CPU}"}}'], label_names=["version"], **RANGE)
    only = rpc(shop, "Series", req, pb.SeriesResponse)
    assert [[(lb.name, lb.value) for lb in s.labels] for s in only.labels_set] == [[("version", "1.4")],
                                                                                   [("version", "1.5")]]
    later = pb.SeriesRequest(matchers=[SHOP], start=T0 + HOUR_MS, end=T0 + 2 * HOUR_MS)
    assert list(rpc(shop, "Series", later, pb.SeriesResponse).labels_set) == []


def test_select_merge_stacktraces_is_the_flame_graph_in_pyroscope_shape(shop):
    req = pb.SelectMergeStacktracesRequest(profile_typeID=CPU, label_selector=SHOP, max_nodes=16384, **RANGE)
    graph = rpc(shop, "SelectMergeStacktraces", req, pb.SelectMergeStacktracesResponse).flamegraph
    assert graph.names[0] == "total" and graph.total == 90_000_000 and graph.max_self == 90_000_000
    assert flame_paths(graph) == {("total",): (90_000_000, 0), ("total", "main.main"): (90_000_000, 0),
                                  ("total", "main.main", "main.work"): (90_000_000, 90_000_000)}
    status, as_json = rpc_json(shop, "SelectMergeStacktraces", {
        "profileTypeID": SAMPLES, "labelSelector": '{service_name="shop", version="1.4"}',
        "start": str(RANGE["start"]), "end": RANGE["end"]})
    assert status == 200 and int(as_json["flamegraph"]["total"]) == 2
    nothing = rpc(shop, "SelectMergeStacktraces",
                  pb.SelectMergeStacktracesRequest(profile_typeID=CPU, label_selector='{service_name="none"}', **RANGE),
                  pb.SelectMergeStacktracesResponse).flamegraph
    assert (list(nothing.names), nothing.total) == (["total"], 0)


def test_select_series_is_the_timeline_in_steps(shop):
    def series(**fields: Any) -> list[pb.Series]:
        req = pb.SelectSeriesRequest(profile_typeID=CPU, label_selector=SHOP, **RANGE, **fields)
        return list(rpc(shop, "SelectSeries", req, pb.SelectSeriesResponse).series)

    (one,) = series(step=60)
    assert [(p.timestamp, p.value) for p in one.points] == [
        (T0 + 60_000, 10e6), (T0 + 120_000, 30e6), (T0 + 180_000, 50e6)]
    assert list(one.labels) == []
    (hourly,) = series(step=3600)
    assert [(p.timestamp, p.value) for p in hourly.points] == [(T0, 90e6)]
    (mean,) = series(step=3600, aggregation=pb.TIME_SERIES_AGGREGATION_TYPE_AVERAGE)
    assert mean.points[0].value == 30e6
    grouped = series(step=3600, group_by=["version"])
    assert [([(lb.name, lb.value) for lb in s.labels], s.points[0].value) for s in grouped] == [
        ([("version", "1.4")], 40e6), ([("version", "1.5")], 50e6)]
    (top,) = series(step=3600, group_by=["version"], limit=1)
    assert top.labels[0].value == "1.5"


def test_select_merge_profile_is_the_merged_pprof_of_one_sample_type(shop):
    req = pb.SelectMergeProfileRequest(profile_typeID=CPU, label_selector=SHOP, **RANGE)
    merged = pprof.parse(rpc(shop, "SelectMergeProfile", req))
    assert list(pprof.sample_types(merged)) == [("cpu", "nanoseconds")]
    assert sum(s.value[0] for s in merged.sample) == 90_000_000


def test_read_answers_match_the_profefe_api(shop):
    """The same store answers both: the flame graph total is /merge's, the timeline /timeline's."""
    merge = shop.get("/api/0/profiles/merge", {"service": "shop", "type": "cpu", "from": "2026-01-01T00:00:00",
                                               "to": "2026-01-01T00:59:59"})
    profile = pprof.parse(merge.data)
    column = [t for t, _ in pprof.sample_types(profile)].index("cpu")
    req = pb.SelectMergeStacktracesRequest(profile_typeID=CPU, label_selector=SHOP, **RANGE)
    graph = rpc(shop, "SelectMergeStacktraces", req, pb.SelectMergeStacktracesResponse).flamegraph
    assert graph.total == sum(s.value[column] for s in profile.sample)


BAD = [
    ("SelectMergeStacktraces", {"profileTypeID": CPU, "labelSelector": "{}"}, 400, "needs service_name"),
    ("SelectMergeStacktraces", {"profileTypeID": CPU, "labelSelector": '{service_name!="shop"}'}, 400, "only ="),
    ("SelectSeries", {"profileTypeID": CPU, "labelSelector": '{service_name=~"sh.*"}', "step": 60}, 400, "only ="),
    ("SelectSeries", {"profileTypeID": CPU, "labelSelector": "service_name=shop", "step": 60}, 400, "bad label selector"),
    ("SelectSeries", {"profileTypeID": CPU, "labelSelector": '{service_name="shop" version="1"}'}, 400,
     "bad label selector"),
    ("SelectMergeProfile", {"profileTypeID": "cpu", "labelSelector": SHOP}, 400, "bad profile type"),
    ("SelectSeries", {"profileTypeID": CPU, "labelSelector": SHOP, "start": T0, "end": T0 + 86_400_000, "step": 1},
     400, "points per series"),
    ("SelectSeries", {"profileTypeID": CPU, "labelSelector": SHOP, "start": T0 + 1000, "end": T0}, 400,
     "start is after end"),
    ("SelectMergeStacktraces", {"profileTypeID": CPU, "labelSelector": SHOP, "format": "PROFILE_FORMAT_TREE"}, 400,
     "tree format"),
    ("SelectMergeStacktraces", {"profileTypeID": CPU, "labelSelector": SHOP,
                                "stackTraceSelector": {"callSite": [{"name": "main.main"}]}}, 400, "stack trace"),
    ("LabelValues", {"matchers": [SHOP]}, 400, "missing the label name"),
    ("LabelNames", {"matchers": ['{service_name="' + "x" * 20_000 + '"}']}, 400, "over"),
    ("LabelNames", {"matchers": ["{" + ",".join(f'k{i}="v"' for i in range(65)) + "}"]}, 400, "more than 64 labels"),
    ("LabelNames", {"matchers": ["{}"] * 33}, 400, "more than 32 matchers"),
    ("LabelNames", {"matchers": ['{service_name="a\\qb"}']}, 400, "bad escape"),
    ("ProfileTypes", {"start": -5}, 400, "not negative"),
]


@pytest.mark.parametrize("method, body, status, message", BAD, ids=[f"{m}-{i}" for i, (m, *_r) in enumerate(BAD)])
def test_bad_queries_are_connect_invalid_argument(shop, method, body, status, message):
    got, reply = rpc_json(shop, method, body)
    assert (got, reply["code"]) == (status, "invalid_argument"), reply
    assert message in reply["message"]
    assert rpc_json(shop, "LabelNames", {"matchers": [SHOP]})[0] == 200  # the server is fine


def test_bodies_the_protocol_does_not_take(shop):
    path = QUERIER + "SelectMergeStacktraces"
    r = shop.request("POST", path, body=b"{}", headers={"Content-Type": "text/plain"})
    assert (r.status, r.json["code"]) == (415, "invalid_argument") and "Accept-Post" in r.headers
    truncated = pb.SelectMergeStacktracesRequest(profile_typeID=CPU, label_selector=SHOP).SerializeToString()[:-3]
    r = shop.request("POST", path, body=truncated, headers={"Content-Type": PROTO})
    assert (r.status, r.json["code"]) == (400, "invalid_argument")
    r = shop.request("POST", path, body=b"{not json", headers={"Content-Type": JSON})
    assert (r.status, r.json["code"]) == (400, "invalid_argument")
    r = shop.request("POST", path, body=b"\0" * ((1 << 20) + 1), headers={"Content-Type": PROTO})
    assert (r.status, r.json["code"]) == (413, "resource_exhausted")
    bomb = gzip.compress(b"\n" + b"\x80" * (4 << 20))
    r = shop.request("POST", path, body=bomb, headers={"Content-Type": PROTO, "Content-Encoding": "gzip"})
    assert r.status == 413 and r.json["code"] == "resource_exhausted"
    gz = gzip.compress(json.dumps({"profileTypeID": CPU, "labelSelector": SHOP, **RANGE}).encode())
    r = shop.request("POST", path, body=gz, headers={"Content-Type": JSON, "Content-Encoding": "gzip"})
    assert r.status == 200 and int(r.json["flamegraph"]["total"]) == 90_000_000
