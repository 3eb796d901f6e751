"""Planning a merge over pre-merged windows and raw profiles.

For a merge of [from, to] (inclusive, whole seconds) with a label filter, the series that can
match are those of (service, type) whose labels include the filter. For each of them:
- a whole day inside [from, to] whose daily window is clean comes from that window;
- a whole hour inside [from, to] whose hourly window is clean comes from that window;
- a whole hour in which the series has no profile at all needs nothing;
- everything else (the partial hours at the edges, stale or missing windows) comes from its raw
  profiles; a pruned hour made stale by a late profile is its old window plus the raw rows left.
The result merges the same profiles as merging every raw profile, so it is the same profile
(same stacks, same totals). A stale window is never used: clean means built from exactly the
counter value (or, for a day, sum of counter values) that is there now.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

from shared.model import ProfileMeta, Query
from shared.ports import MetaStore, WindowStore
from shared.windows import DAY, HOUR, HourState, Series, Window, epoch, floor_to, from_epoch


@dataclass(frozen=True)
class MergePlan:
    windows: list[Window]  # clean windows with a blob, each covering only what the query asks
    raw: list[ProfileMeta]  # raw profiles not covered by any of them

    @property
    def inputs(self) -> int:
        return len(self.windows) + len(self.raw)


def whole(start: int, end: int, span: int) -> range:
    """Starts of the span-aligned periods lying entirely inside [start, end] (inclusive)."""
    first = -(-start // span) * span
    last = floor_to(end + 1, span) - span
    return range(first, last + 1, span) if last >= first else range(0)


def plan_merge(meta: MetaStore, windows: WindowStore, query: Query) -> MergePlan:
    assert query.type is not None and query.limit is None, "a merge over windows needs a type and no limit"
    start, end = epoch(query.start), epoch(query.end)
    hours = whole(start, end, HOUR)
    # A series with no counter in these hours has no window to offer; its profiles at the edges
    # are found as raw ones like any profile outside a window.
    series = windows.series_of(query.service, query.type, query.labels, active_in=(hours[0], hours[-1])) if hours else []
    if not series:
        return MergePlan([], meta.find(query))
    chosen, uncovered = _cover(windows, series, hours, whole(start, end, DAY))
    # A row of these series is told by its labels and signature; only another row (a key repeated
    # in another order, or a series of the edges alone) needs its series id computed.
    known = {(s.labels, s.signature): s.id for s in series}
    raw = []
    for lo, hi in _raw_intervals(start, end, hours, set().union(*uncovered.values())):
        for m in meta.find(replace(query, start=from_epoch(lo), end=from_epoch(hi))):
            at = floor_to(epoch(m.created_at), HOUR)
            if at in hours:
                sid = known.get((m.labels, m.signature)) or Series.of(m.service, m.type, m.labels, m.signature).id
                if sid in uncovered and at not in uncovered[sid]:
                    continue  # a clean window of its series has it
            raw.append(m)
    return MergePlan([w for w in chosen if w.blob_key], raw)


def _cover(windows: WindowStore, series: list[Series], hours: range, days: range
           ) -> tuple[list[Window], dict[str, set[int]]]:
    """The windows to use, and per series the whole hours with data whose raw profiles are needed.

    Work is proportional to the hours that hold data, never to the length of the range. A pruned
    hour (its raw profiles deleted by retention once its window was clean) keeps being served
    from its window even when a late profile made it stale: the raw rows left are exactly the
    late ones, so the window plus those rows is the whole hour until the rebuild folds them in.
    """
    ids = [s.id for s in series]
    states: dict[str, dict[int, HourState]] = defaultdict(dict)
    for st in windows.hour_states(ids, hours[0], hours[-1]):
        states[st.series_id][st.hour] = st
    chosen: list[Window] = []
    covered: dict[str, set[int]] = {sid: set() for sid in ids}
    if days:
        for w in windows.windows(ids, DAY, days[0], days[-1]):
            hours_of = states[w.series_id]
            day_version = sum(hs.version for h in range(w.start, w.start + DAY, HOUR)
                              if (hs := hours_of.get(h)) is not None)
            if w.built_from == day_version:
                chosen.append(w)
                covered[w.series_id].update(range(w.start, w.start + DAY, HOUR))
    partly: dict[str, set[int]] = {sid: set() for sid in ids}
    for w in windows.windows(ids, HOUR, hours[0], hours[-1]):
        if w.start in covered[w.series_id]:
            continue
        state = states[w.series_id].get(w.start)
        if state is not None and state.version == w.built_from:
            chosen.append(w)
            covered[w.series_id].add(w.start)
        elif state is not None and state.pruned:
            chosen.append(w)
            partly[w.series_id].add(w.start)
    uncovered = {sid: (set(states[sid]) - covered[sid]) | partly[sid] for sid in ids}
    return chosen, uncovered


def _raw_intervals(start: int, end: int, hours: range, needed: set[int]) -> list[tuple[int, int]]:
    """The inclusive (lo, hi) intervals whose raw profiles may be needed: the partial hours at
    both edges of [start, end] and the `needed` whole hours, adjacent ones joined."""
    out: list[tuple[int, int]] = []

    def add(lo: int, hi: int) -> None:
        if out and out[-1][1] + 1 >= lo:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))

    if start < hours[0]:
        add(start, hours[0] - 1)
    for h in sorted(needed):
        add(h, h + HOUR - 1)
    if hours[-1] + HOUR <= end:
        add(hours[-1] + HOUR, end)
    return out
