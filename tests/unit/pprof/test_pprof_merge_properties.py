"""Properties of merge over generated profiles, plus its header and compatibility rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.pprof import (
    IncompatibleProfiles,
    Merger,
    Profile,
    check_valid,
    merge,
    check,
    parse,
    to_text,
    totals,
    write,
)
from tests.unit.pprof.builders import cpu_profile
from tests.unit.pprof.generated import empty_like, profiles, shapes

# Per test, not a global profile: the suite is shared with other packages' hypothesis tests.
examples = settings(max_examples=60, deadline=None)


@st.composite
def series(draw: st.DrawFn, min_size: int = 1, max_size: int = 5) -> list[Profile]:
    shape = draw(shapes())
    return draw(st.lists(profiles(shape), min_size=min_size, max_size=max_size))


def _column_sums(ps: list[Profile]) -> tuple[int, ...]:
    return tuple(map(sum, zip(*(totals(p) for p in ps))))


@examples
@given(series())
def test_merged_totals_are_the_sum_of_the_inputs(ps: list[Profile]) -> None:
    assert totals(merge(ps)) == _column_sums(ps)


@examples
@given(series(min_size=2), st.randoms(use_true_random=False))
def test_merge_order_does_not_change_the_result(ps: list[Profile], rng) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(ps)
    rng.shuffle(shuffled)
    assert to_text(merge(shuffled)) == to_text(merge(ps))


@examples
@given(series(min_size=3, max_size=4))
def test_merge_is_associative(ps: list[Profile]) -> None:
    assert to_text(merge([merge(ps[:2]), *ps[2:]])) == to_text(merge(ps))


@examples
@given(series(max_size=1))
def test_merging_with_an_empty_profile_of_the_same_type_changes_nothing(ps: list[Profile]) -> None:
    (p,) = ps
    alone = merge([p])
    assert to_text(merge([p, empty_like(p)])) == to_text(alone)
    assert to_text(merge([empty_like(p), p])) == to_text(alone)
    assert totals(alone) == totals(p)


@examples
@given(series())
def test_streaming_merger_equals_merge(ps: list[Profile]) -> None:
    m = Merger()
    for i, p in enumerate(ps):
        m.add(p)
        if i == 0:
            m.result()  # taking a result midway does not disturb the merge
    assert m.result() == merge(ps)


@examples
@given(series())
def test_merged_profile_is_valid_compact_and_survives_a_rewrite(ps: list[Profile]) -> None:
    merged = merge(ps)
    check_valid(merged)
    assert all(any(s.value) for s in merged.sample)
    used_locations = {i for s in merged.sample for i in s.location_id}
    assert sorted(loc.id for loc in merged.location) == list(range(1, len(merged.location) + 1))
    assert {loc.id for loc in merged.location} == used_locations
    assert {f.id for f in merged.function} == {ln.function_id for loc in merged.location for ln in loc.line}
    assert {m.id for m in merged.mapping} == {loc.mapping_id for loc in merged.location} - {0}
    assert len(set(merged.string_table)) == len(merged.string_table)
    assert to_text(parse(write(merged))) == to_text(merged)


@examples
@given(series(max_size=1))
def test_merging_a_profile_with_itself_doubles_every_value(ps: list[Profile]) -> None:
    (p,) = ps
    once, twice = merge([p]), merge([p, p])
    assert [[2 * v for v in s.value] for s in once.sample] == [list(s.value) for s in twice.sample]


def test_header_fields_are_combined_like_pprof() -> None:
    a, b, c = cpu_profile(time_nanos=300), cpu_profile(time_nanos=100), cpu_profile(time_nanos=0)
    b.period = 20_000_000
    for p, comment in ((a, "x"), (b, "y"), (c, "x")):
        p.string_table.append(comment)
        p.comment.append(len(p.string_table) - 1)
    a.string_table.append("drop.*")
    a.drop_frames = len(a.string_table) - 1
    b.string_table.append("cpu")  # not the first non-empty one: a has none, b comes first
    b.default_sample_type = 3
    merged = merge([a, b, c])
    st = merged.string_table
    assert merged.time_nanos == 100  # earliest non-zero
    assert merged.duration_nanos == 3_000_000_000
    assert merged.period == 20_000_000
    assert [st[i] for i in merged.comment] == ["x", "y"]
    assert st[merged.drop_frames] == "drop.*"
    assert st[merged.default_sample_type] == "cpu"
    assert totals(merged) == (3 * 3, 3 * 30_000_000)


def test_incompatible_profiles_name_both_signatures() -> None:
    cpu = cpu_profile()
    other = cpu_profile()
    other.string_table[4] = "microseconds"
    with pytest.raises(IncompatibleProfiles) as caught:
        merge([cpu, other])
    assert check(cpu.SerializeToString()).signature in str(caught.value)
    assert "cpu/microseconds:samples/count,cpu/microseconds" in str(caught.value)


def test_a_profile_without_sample_types_only_merges_with_its_kind() -> None:
    typeless = Profile(string_table=[""])
    assert len(merge([typeless, typeless]).sample) == 0
    with pytest.raises(IncompatibleProfiles):
        merge([cpu_profile(), typeless])


def test_merging_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no profiles to merge"):
        merge([])


def test_zero_samples_are_dropped_and_the_same_binary_at_another_address_is_one_mapping() -> None:
    a, b = cpu_profile(), cpu_profile()
    b.sample[0].value[:] = [0, 0]
    shift = 0x7F0000000000
    b.mapping[0].memory_start += shift
    b.mapping[0].memory_limit += shift
    for loc in b.location:
        loc.address += shift
    merged = merge([a, b])
    assert len(merged.mapping) == 1
    assert len(merged.location) == 3
    assert totals(merged) == (1 + 2 + 2, 10_000_000 + 20_000_000 + 20_000_000)


def test_samples_merge_only_when_stack_and_labels_both_match() -> None:
    a = cpu_profile(samples=2)
    b = cpu_profile(samples=2)
    b.string_table.append("store")
    b.sample[0].label[0].str = len(b.string_table) - 1  # same stack as a's sample 0, other label
    merged = merge([a, b])
    rows = sorted(
        (len(s.location_id), merged.string_table[s.label[0].str], tuple(s.value)) for s in merged.sample
    )
    assert rows == [
        (2, "encode", (4, 40_000_000)),
        (3, "encode", (1, 10_000_000)),
        (3, "store", (1, 10_000_000)),
    ]
