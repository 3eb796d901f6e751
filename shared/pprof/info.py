"""Questions asked of a built Profile: its types and totals (`check` answers them for bytes), and
of a signature: the types it names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.pprof import _native

if TYPE_CHECKING:
    from shared.pprof.profile_pb2 import Profile


def sample_types(p: Profile) -> tuple[tuple[str, str], ...]:
    """(type, unit) of each sample value column, e.g. (("samples", "count"), ("cpu", "nanoseconds"))."""
    st = p.string_table
    return tuple((st[t.type], st[t.unit]) for t in p.sample_type)


def period_type(p: Profile) -> tuple[str, str] | None:
    """(type, unit) of the events between samples, or None when the profile does not say."""
    pt = p.period_type
    if not pt.type and not pt.unit:
        return None
    st = p.string_table
    return st[pt.type], st[pt.unit]


def totals(p: Profile) -> tuple[int, ...]:
    """The sum of each sample value column (summed by the native core, the GIL released)."""
    return tuple(_native.totals(p.SerializeToString()))


def signature_types(signature: str) -> tuple[tuple[str, str], list[tuple[str, str]]]:
    """A `Checked.signature` read back: `cpu/nanoseconds:samples/count,cpu/nanoseconds` ->
    (("cpu", "nanoseconds"), [("samples", "count"), ("cpu", "nanoseconds")]); the period type is
    ("", "") when the profile has none."""
    period, _, columns = signature.partition(":")
    ptype, _, punit = period.partition("/")
    return (ptype, punit), [(t, u) for t, _, u in (c.partition("/") for c in columns.split(",") if c)]
