"""The arithmetic behind the UI: trees, truncation, top tables, diffs and the mean per profile."""
from __future__ import annotations

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
    got = decode(flame.flame_json(stacks_profile(SAMPLE), sample_type=None, budget=1000))
    assert got[()] == (100, 0)
    assert got[("main",)] == (100, 0)
    assert got[("main", "a")] == (60, 10)
    assert got[("main", "a", "x")] == (50, 50)
    assert got[("main", "b", "x")] == (30, 30)


def test_children_come_heaviest_first():
    out = flame.flame_json(stacks_profile(SAMPLE), sample_type=None, budget=1000)
    order = [out["names"][n] for n, d in zip(out["nodes"]["name"], out["nodes"]["depth"]) if d == 2]
    assert order == ["a", "b", "c", "d"]


def test_truncation_keeps_the_heaviest_paths_and_sums_the_rest_into_other():
    out = flame.flame_json(stacks_profile(SAMPLE), sample_type=None, budget=4)  # root, main, a, x
    got = decode(out)
    assert set(got) == {(), ("main",), ("main", "a"), ("main", "a", "x"), ("main", "other")}
    assert got[("main", "other")] == (40, 40)  # b (30, with x) + c (7) + d (3)
    assert got[()] == (100, 0)
    assert out["folded"] == 4  # b, b/x, c, d


def test_top_counts_flat_at_the_leaf_and_cum_once_per_sample_even_when_recursive():
    p = stacks_profile({("main", "f", "f", "g"): 5, ("main", "f"): 2})
    top = flame.top(p, 0)
    assert top["f"] == (2, 7)
    assert top["g"] == (5, 5)
    assert top["main"] == (0, 7)


def test_the_table_is_cut_to_top_rows_by_flat():
    out = flame.flame_json(stacks_profile(SAMPLE), sample_type=None, budget=1000, top_rows=2)
    assert [[out["names"][r[0]], r[1], r[2]] for r in out["top"]] == [["x", 80, 80], ["a", 10, 60]]


def test_mean_scales_every_value_by_the_number_of_profiles():
    out = flame.flame_json(stacks_profile(SAMPLE), sample_type=None, budget=1000, scale=1 / 4)
    got = decode(out)
    assert got[()] == (25, 0)
    assert got[("main", "c")] == (1.75, 1.75)
    assert out["total"] == 25


def test_mean_profile_rounds_to_the_nearest_integer_both_ways():
    p = stacks_profile({("a",): 7, ("b",): 5, ("c",): -5})
    explore.mean_profile(p, 2)
    assert [s.value[0] for s in p.sample] == [4, 3, -3]


def test_share_change_is_normalised_to_each_sides_total():
    assert flame.share_change(10, 40, 100, 200) == 0.2 - 0.1
    assert flame.share_change(5, 0, 10, 0) == -0.5


def test_the_diff_lays_both_trees_over_each_other_and_ranks_by_change_of_share():
    base = stacks_profile({("main", "a"): 50, ("main", "b"): 50})
    target = stacks_profile({("main", "a"): 90, ("main", "b"): 30, ("main", "n"): 80})
    out = flame.diff_json(base, target, sample_type=None, budget=1000)
    got = decode(out)
    assert got[("main", "a")] == (50, 90)
    assert got[("main", "n")] == (0, 80)
    assert out["base_total"] == 100 and out["target_total"] == 200
    names = [out["names"][r[0]] for r in out["top"]]
    assert names[:2] == ["n", "b"]  # n: +40 points of share, b: -35, a: -5


def test_a_sample_type_is_chosen_by_name_and_defaults_to_the_last():
    p = stacks_profile({("a",): 1})
    assert flame.sample_type_index(p, None) == 0
    assert flame.sample_type_index(p, "cpu") == 0


def test_sample_type_names_come_from_the_signature():
    assert explore.sample_type_names("cpu/nanoseconds:samples/count,cpu/nanoseconds") == ["samples", "cpu"]
    assert explore.sample_type_names(":inuse_space/bytes") == ["inuse_space"]
