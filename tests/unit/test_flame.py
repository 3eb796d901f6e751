"""The arithmetic behind the UI: trees, truncation, top tables, diffs and the mean per profile."""
from __future__ import annotations

import pytest

from shared.pprof import Profile
from services.query_api import explore, flame


def stacks_profile(stacks: dict[tuple[str, ...], int], sample_type: str = "cpu") -> Profile:
    """One sample per stack (root first) with its value in the only column."""
    p = Profile(string_table=["", sample_type, "nanoseconds"])
    p.sample_type.add(type=1, unit=2)
    ids: dict[str, int] = {}
    for stack, value in stacks.items():
        locs = []
        for name in stack:
            if name not in ids:
                ids[name] = len(ids) + 1
                p.string_table.append(name)
                p.function.add(id=ids[name], name=len(p.string_table) - 1)
                p.location.add(id=ids[name]).line.add(function_id=ids[name])
            locs.append(ids[name])
        p.sample.add(location_id=list(reversed(locs)), value=[value])  # pprof keeps the leaf first
    return p


def raw(stacks: dict[tuple[str, ...], int]) -> bytes:
    return stacks_profile(stacks).SerializeToString()


def decode(out: dict) -> dict[tuple[str, ...], tuple]:
    """path -> (total, self) of a flame_json answer, rebuilt from its pre-order arrays."""
    names, nodes = out["names"], out["nodes"]
    path: list[str] = []
    got = {}
    for i, depth in enumerate(nodes["depth"]):
        del path[depth:]
        path.append(names[nodes["name"][i]])
        got[tuple(path[1:])] = (nodes["total"][i], nodes["self"][i]) if "total" in nodes else (
            nodes["base"][i], nodes["target"][i])
    return got


SAMPLE = {("main", "a", "x"): 50, ("main", "a"): 10, ("main", "b", "x"): 30, ("main", "c"): 7, ("main", "d"): 3}


def test_the_tree_holds_totals_and_self_values_per_call_path():
    got = decode(flame.flame_json(raw(SAMPLE), sample_type=None, budget=1000))
    assert got[()] == (100, 0)
    assert got[("main",)] == (100, 0)
    assert got[("main", "a")] == (60, 10)
    assert got[("main", "a", "x")] == (50, 50)
    assert got[("main", "b", "x")] == (30, 30)


def test_children_come_heaviest_first():
    out = flame.flame_json(raw(SAMPLE), sample_type=None, budget=1000)
    order = [out["names"][n] for n, d in zip(out["nodes"]["name"], out["nodes"]["depth"]) if d == 2]
    assert order == ["a", "b", "c", "d"]


def test_truncation_keeps_the_heaviest_paths_and_sums_the_rest_into_other():
    out = flame.flame_json(raw(SAMPLE), sample_type=None, budget=4)  # root, main, a, x
    got = decode(out)
    assert set(got) == {(), ("main",), ("main", "a"), ("main", "a", "x"), ("main", "other")}
    assert got[("main", "other")] == (40, 40)  # b (30, with x) + c (7) + d (3)
    assert got[()] == (100, 0)
    assert out["folded"] == 4  # b, b/x, c, d


def top(out: dict) -> dict[str, tuple]:
    return {out["names"][n]: tuple(rest) for n, *rest in out["top"]}


def test_top_counts_flat_at_the_leaf_and_cum_once_per_sample_even_when_recursive():
    got = top(flame.flame_json(raw({("main", "f", "f", "g"): 5, ("main", "f"): 2}), sample_type=None, budget=100))
    assert got["f"] == (2, 7)
    assert got["g"] == (5, 5)
    assert got["main"] == (0, 7)


def test_the_table_is_cut_to_top_rows_by_flat():
    out = flame.flame_json(raw(SAMPLE), sample_type=None, budget=1000, top_rows=2)
    assert [[out["names"][r[0]], r[1], r[2]] for r in out["top"]] == [["x", 80, 80], ["a", 10, 60]]


def test_mean_scales_every_value_by_the_number_of_profiles():
    out = flame.flame_json(raw(SAMPLE), sample_type=None, budget=1000, scale=1 / 4)
    got = decode(out)
    assert got[()] == (25, 0)
    assert got[("main", "c")] == (1.75, 1.75)
    assert out["total"] == 25


def test_mean_profile_rounds_to_the_nearest_integer_both_ways():
    p = stacks_profile({("a",): 7, ("b",): 5, ("c",): -5})
    explore.mean_profile(p, 2)
    assert [s.value[0] for s in p.sample] == [4, 3, -3]


def test_the_diff_lays_both_trees_over_each_other_and_ranks_by_change_of_share():
    base = raw({("main", "a"): 50, ("main", "b"): 50})
    target = raw({("main", "a"): 90, ("main", "b"): 30, ("main", "n"): 80})
    out = flame.diff_json(base, target, sample_type=None, budget=1000)
    got = decode(out)
    assert got[("main", "a")] == (50, 90)
    assert got[("main", "n")] == (0, 80)
    assert out["base_total"] == 100 and out["target_total"] == 200
    names = [out["names"][r[0]] for r in out["top"]]
    assert names[:2] == ["n", "b"]  # n: +40 points of share, b: -35, a: -5


def two_columns(stacks: dict[tuple[str, ...], tuple[int, int]]) -> bytes:
    """Go's CPU profile shape: `samples/count` then `cpu/nanoseconds`."""
    p = stacks_profile({k: cpu for k, (_samples, cpu) in stacks.items()})
    p.string_table.extend(["samples", "count"])
    del p.sample_type[:]
    p.sample_type.add(type=len(p.string_table) - 2, unit=len(p.string_table) - 1)
    p.sample_type.add(type=1, unit=2)
    for sample, (samples, cpu) in zip(p.sample, stacks.values()):
        sample.value[:] = [samples, cpu]
    return p.SerializeToString()


def test_a_sample_type_is_chosen_by_name_and_defaults_to_the_last():
    data = two_columns({("main", "a"): (1, 10), ("main", "b"): (3, 20)})
    last = flame.flame_json(data, sample_type=None, budget=100)
    assert (last["sample_type"], last["unit"], last["total"]) == ("cpu", "nanoseconds", 30)
    assert [t["type"] for t in last["sample_types"]] == ["samples", "cpu"]
    samples = flame.flame_json(data, sample_type="samples", budget=100)
    assert (samples["sample_type"], samples["total"]) == ("samples", 4)
    assert decode(samples)[("main", "b")] == (3, 3)
    with pytest.raises(ValueError, match='no sample type "alloc_space" \\(have samples, cpu\\)'):
        flame.flame_json(data, sample_type="alloc_space", budget=100)


def test_the_diff_refuses_a_sample_type_the_base_lacks():
    with pytest.raises(ValueError, match='the base: no sample type "samples"'):
        flame.diff_json(raw({("a",): 1}), two_columns({("a",): (1, 2)}), sample_type="samples", budget=100)


def test_a_budget_cuts_the_diff_by_the_larger_share_on_either_side():
    # "b" is small in the base's whole but most of the target's: kept over "c", which is neither.
    base = raw({("main", "a"): 900, ("main", "b"): 10, ("main", "c"): 90})
    target = raw({("main", "a"): 10, ("main", "b"): 80, ("main", "c"): 10})
    got = decode(flame.diff_json(base, target, sample_type=None, budget=4))  # root, main, a, b
    assert set(got) == {(), ("main",), ("main", "a"), ("main", "b"), ("main", "other")}
    assert got[("main", "other")] == (90, 10)


def test_a_function_called_other_takes_the_folded_rest():
    got = decode(flame.flame_json(raw({("main", "other"): 50, ("main", "x"): 30, ("main", "y"): 20}),
                                  sample_type=None, budget=3))  # root, main, other
    assert got[("main", "other")] == (100, 100)
    assert set(got) == {(), ("main",), ("main", "other")}


def test_a_location_without_lines_is_named_by_its_address_and_inlined_frames_stand_apart():
    p = Profile(string_table=["", "cpu", "nanoseconds", "main", "inlined"])
    p.sample_type.add(type=1, unit=2)
    p.function.add(id=1, name=3)
    p.function.add(id=2, name=4)
    loc = p.location.add(id=1)
    loc.line.add(function_id=2)  # the innermost line first, as pprof writes inlined calls
    loc.line.add(function_id=1)
    p.location.add(id=2, address=0x4A0F)
    p.sample.add(location_id=[2, 1], value=[7])
    got = decode(flame.flame_json(p.SerializeToString(), sample_type=None, budget=100))
    assert got[("main", "inlined", "0x4a0f")] == (7, 7)


def test_rows_stored_before_totals_are_counted_but_left_out_of_the_sum_and_the_mean(tmp_path):
    """Migration 0003 added the totals column; rows older than it have none, and only their blob
    holds them, so the timeline counts them and says so rather than guess."""
    from datetime import datetime, timezone

    from services.query_api.query import Stores
    from shared.adapters.blobs_local import LocalBlobStore
    from shared.adapters.meta_sql import SqlMetaStore, migrate, sqlite_url
    from shared.model import Labels, ProfileMeta, ProfileType

    url = sqlite_url(tmp_path / "m.db")
    migrate(url)
    meta = SqlMetaStore(url)
    sig = "cpu/nanoseconds:samples/count,cpu/nanoseconds"

    def row(n: int, second: int, totals: tuple[int, ...]) -> ProfileMeta:
        at = datetime(2026, 1, 1, 0, 0, second, tzinfo=timezone.utc)
        return ProfileMeta(id=f"p{n}", service="shop", type=ProfileType.CPU, labels=Labels(), created_at=at,
                           received_at=at, size=1, signature=sig, totals=totals)

    meta.put([row(1, 1, (1, 10)), row(2, 2, (3, 30)), row(3, 3, ())])  # p3: stored before totals
    stores = Stores(meta=meta, blobs=LocalBlobStore(tmp_path / "b"))
    query = {"service": "shop", "type": "cpu", "from": "2026-01-01T00:00:00", "to": "2026-01-01T00:00:09",
             "buckets": "1"}
    summed = explore.timeline(stores, query)
    assert (summed["profiles"], summed["values"], summed["without_totals"]) == ([3], [40], 1)
    mean = explore.timeline(stores, {**query, "aggregation": "mean"})
    assert mean["values"] == [20]  # (10 + 30) / 2: the row without totals is not a zero
    meta.close()
