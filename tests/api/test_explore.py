"""The web UI's read APIs in both deployments (SQLite and PostgreSQL): label pairs, timeline
buckets, flame graph data with sum and mean, and the diff as JSON and as a pprof."""
from __future__ import annotations

import pytest

from shared import pprof
from tests.api import pprofs
from tests.api.helpers import WINDOW, upload

RANGE = {"from": "2026-01-01T00:00:00", "to": "2026-01-01T00:59:59"}


@pytest.fixture
def shop(api):
    """Three CPU profiles of `shop`: two of version 1.4 (10 ms and 30 ms), one of 1.5 (50 ms)."""
    for minute, version, value in ((1, "1.4", 10_000_000), (2, "1.4", 30_000_000), (3, "1.5", 50_000_000)):
        upload(api, service="shop", body=pprofs.cpu(value=value), labels=f"version={version}",
               created_at=f"2026-01-01T00:0{minute}:00")
    return api


def body(reply):
    assert reply.status == 200, reply.data
    return reply.json["body"]


def test_labels_name_the_types_and_pairs_that_exist(shop):
    got = body(shop.get("/api/0/labels", {"service": "shop", **RANGE}))
    assert got == {"types": ["cpu"], "labels": {"version": ["1.4", "1.5"]}}


def test_label_values_narrow_to_the_labels_already_chosen(api):
    """Facets: a key not chosen offers what the chosen pairs leave; a chosen key offers what the
    other keys' pairs leave, so its alternatives stay in the list."""
    for minute, labels in ((1, "version=1.4,zone=a"), (2, "version=1.5,zone=b"), (3, "version=1.5,zone=c")):
        upload(api, service="shop", labels=labels, created_at=f"2026-01-01T00:0{minute}:00")
    everything = body(api.get("/api/0/labels", {"service": "shop", **RANGE}))
    assert everything["labels"] == {"version": ["1.4", "1.5"], "zone": ["a", "b", "c"]}
    one = body(api.get("/api/0/labels", {"service": "shop", "type": "cpu", **RANGE, "labels": "version=1.5"}))
    assert one["labels"] == {"version": ["1.4", "1.5"], "zone": ["b", "c"]}
    two = body(api.get("/api/0/labels", {"service": "shop", **RANGE, "labels": "version=1.5,zone=b"}))
    assert two["labels"] == {"version": ["1.5"], "zone": ["b", "c"]}
    none = body(api.get("/api/0/labels", {"service": "shop", **RANGE, "labels": "zone=a,version=1.5"}))
    assert none["labels"] == {"version": ["1.4"], "zone": ["b", "c"]}


def test_timeline_counts_profiles_and_sums_the_sample_type_per_bucket(shop):
    got = body(shop.get("/api/0/timeline", {"service": "shop", "type": "cpu", **RANGE, "buckets": "60",
                                            "sample_type": "cpu"}))
    assert sum(got["profiles"]) == 3 and got["without_totals"] == 0
    assert sum(got["values"]) == 90_000_000
    mean = body(shop.get("/api/0/timeline", {"service": "shop", "type": "cpu", **RANGE, "buckets": "1",
                                             "sample_type": "cpu", "aggregation": "mean"}))
    assert mean["values"] == [30_000_000]


def test_flame_graph_totals_with_sum_and_mean(shop):
    query = {"service": "shop", "type": "cpu", **RANGE, "sample_type": "cpu"}
    summed = body(shop.get("/api/0/flamegraph", query))
    assert (summed["total"], summed["profiles"]) == (90_000_000, 3)
    assert "main.work" in summed["names"]
    mean = body(shop.get("/api/0/flamegraph", {**query, "aggregation": "mean"}))
    assert mean["total"] == 30_000_000


def test_a_diff_of_two_label_values_as_json_and_as_pprof(shop):
    query = {"service": "shop", "type": "cpu", **RANGE, "labels": "version=1.5", "base_labels": "version=1.4"}
    assert shop.get("/api/0/flamegraph/diff", query).status == 200
    r = shop.get("/api/0/profiles/diff", query)
    assert r.status == 200
    diff = pprof.parse(r.data)
    column = [t for t, _ in pprof.sample_types(diff)].index("cpu")
    # -diff_base: the base's samples negated, so the sum is target - base.
    assert sum(s.value[column] for s in diff.sample) == 50_000_000 - 40_000_000


def test_nothing_in_the_range_is_a_404(api):
    assert api.get("/api/0/flamegraph", {"service": "none", "type": "cpu", **WINDOW}).status == 404
