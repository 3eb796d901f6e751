"""Questions about a profile that every caller asks: its types, signature, totals, emptiness."""

from __future__ import annotations

from shared.pprof import _native
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


def signature(p: Profile) -> str:
    """A stable text key of the period type and sample types: two profiles merge iff theirs are equal.

    e.g. "cpu/nanoseconds:samples/count,cpu/nanoseconds"; the part before ":" is empty when the
    profile has no period type.
    """
    pt = period_type(p)
    head = f"{pt[0]}/{pt[1]}" if pt else ""
    return head + ":" + ",".join(f"{t}/{u}" for t, u in sample_types(p))


def totals(p: Profile) -> tuple[int, ...]:
    """The sum of each sample value column (summed by the native core, the GIL released)."""
    return tuple(_native.totals(p.SerializeToString()))


def is_empty(p: Profile) -> bool:
    """True when no sample carries a non-zero value."""
    return not any(any(s.value) for s in p.sample)


def time_nanos(p: Profile) -> int:
    """When the collection started, in nanoseconds since the epoch (0 when unknown)."""
    return p.time_nanos
