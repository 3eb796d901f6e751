"""The column reading of a profile's tables gives exactly the rows of the message-by-message one."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings

from shared.pprof import Profile, parse, tables
from shared.pprof.columns_pb2 import MergeColumns
from tests.unit.pprof.generated import profiles, shapes
from tests.unit.pprof.goldens import fixtures


def _rows(p: Profile, cols: MergeColumns) -> tuple[list, list, list]:  # type: ignore[type-arg]
    functions = {f.id: i for i, f in enumerate(p.function)}
    locations = {loc.id: i for i, loc in enumerate(p.location)}
    return (
        tables.function_rows(p, cols),
        tables.location_rows(p, cols, functions),
        list(tables.sample_rows(p, cols, locations, lambda raw: raw)),
    )


def _assert_same_rows(p: Profile) -> None:
    # Empty columns never line up with a non-empty table, so they force the slow reading.
    assert _rows(p, tables.columns(p)) == _rows(p, MergeColumns())


@pytest.mark.parametrize("profile", fixtures(), ids=lambda p: p.name)
def test_columns_and_messages_agree_on_real_profiles(profile: Path) -> None:
    p = parse(profile.read_bytes())
    cols = tables.columns(p)
    if p.sample:
        assert len(cols.sample.value) == len(p.sample) * len(p.sample_type)  # the fast path is taken
    _assert_same_rows(p)


@settings(max_examples=60, deadline=None)
@given(shapes().flatmap(profiles))
def test_columns_and_messages_agree_on_generated_profiles(p: Profile) -> None:
    _assert_same_rows(p)
