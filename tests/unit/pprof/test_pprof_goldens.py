"""Every real Go profile under tests/testdata renders to its golden text, and survives a rewrite.

Regenerate the goldens with `python -m tests.unit.pprof.goldens --update` (or
scripts/gen_fixtures.sh, which also regenerates the profiles).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.pprof import (
    check,
    parse,
    period_type,
    sample_types,
    to_text,
    totals,
    write,
)
from tests.unit.pprof.goldens import fixtures, golden_path, render

FIXTURES = fixtures()
EXPECTED_COUNTS = {"cpu": 10, "heap": 3, "goroutine": 2, "block": 2, "mutex": 2, "threadcreate": 1}


def test_every_profile_type_is_there() -> None:
    counts = {kind: len(fixtures(kind)) for kind in EXPECTED_COUNTS}
    assert counts == EXPECTED_COUNTS
    assert all(golden_path(p).exists() for p in FIXTURES)


@pytest.mark.parametrize("profile", FIXTURES, ids=lambda p: p.name)
def test_profile_renders_to_its_golden(profile: Path) -> None:
    assert render(profile) == golden_path(profile).read_text()


@pytest.mark.parametrize("profile", FIXTURES, ids=lambda p: p.name)
def test_written_profile_parses_back_to_the_same_text(profile: Path) -> None:
    p = parse(profile.read_bytes())
    again = parse(write(p))
    assert to_text(again) == to_text(p)
    assert again == p


def test_helpers_on_a_real_cpu_profile() -> None:
    data = fixtures("cpu")[0].read_bytes()
    p, c = parse(data), check(data)
    assert sample_types(p) == c.sample_types == (("samples", "count"), ("cpu", "nanoseconds"))
    assert period_type(p) == c.period_type == ("cpu", "nanoseconds")
    assert c.signature == "cpu/nanoseconds:samples/count,cpu/nanoseconds"
    count, nanos = totals(p)
    assert count == sum(s.value[0] for s in p.sample) > 0
    assert nanos == count * p.period
    assert c.totals == (count, nanos)
    assert not c.empty
    assert c.time_nanos == p.time_nanos > 1_600_000_000 * 10**9


def test_helpers_on_a_real_heap_profile() -> None:
    p = parse(fixtures("heap")[0].read_bytes())
    assert check(fixtures("heap")[0].read_bytes()).signature == (
        "space/bytes:alloc_objects/count,alloc_space/bytes,inuse_objects/count,inuse_space/bytes"
    )
    assert len(totals(p)) == 4
