"""Planning a merge over pre-merged windows and raw profiles.

For a merge of [from, to] (inclusive, whole seconds) with a label filter, the series that can
match are those of (service, type) whose labels include the filter. For each of them:
- a whole day inside [from, to] whose daily window is clean comes from that window;
- a whole hour inside [from, to] whose hourly window is clean comes from that window;
- a whole hour in which the series has no profile at all needs nothing;
- everything else (the partial hours at the edges, stale or missing windows) comes from its raw
  profiles.
The result merges the same profiles as merging every raw profile, so it is the same profile
(same stacks, same totals). A stale window is never used: clean means built from exactly the
counter value (or, for a day, sum of counter values) that is there now.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

from shared.model import ProfileMeta, Query
from shared.ports import MetaStore, WindowStore
from shared.windows import DAY, HOUR, Series, Window, epoch, floor_to, from_epoch


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
    series = windows.series_of(query.service, query.type, query.labels) if hours else []
    if not series:
        return MergePlan([], meta.find(query))
    chosen, covered = _cover(windows, series, hours, whole(start, end, DAY))
    everywhere = set.intersection(*(covered[s.id] for s in series))
    raw = []
    for lo, hi in _gaps(start, end, sorted(everywhere)):
        for m in meta.find(replace(query, start=from_epoch(lo), end=from_epoch(hi))):
            at = floor_to(epoch(m.created_at), HOUR)
            if at not in covered.get(Series.of(m.service, m.type, m.labels, m.signature).id, ()):
                raw.append(m)
    return MergePlan([w for w in chosen if w.blob_key], raw)


def _cover(windows: WindowStore, series: list[Series], hours: range, days: range
           ) -> tuple[list[Window], dict[str, set[int]]]:
    """The clean windows to use, and per series the whole hours they (or the absence of data) cover."""
    ids = [s.id for s in series]
    versions: dict[str, dict[int, int]] = defaultdict(dict)
    for st in windows.hour_states(ids, hours[0], hours[-1]):
        versions[st.series_id][st.hour] = st.version
    chosen: list[Window] = []
    covered: dict[str, set[int]] = {sid: set() for sid in ids}
    if days:
        for w in windows.windows(ids, DAY, days[0], days[-1]):
            day_versions = [v for h, v in versions[w.series_id].items() if w.start <= h < w.start + DAY]
            if w.built_from == sum(day_versions):
                chosen.append(w)
                covered[w.series_id].update(range(w.start, w.start + DAY, HOUR))
    for w in windows.windows(ids, HOUR, hours[0], hours[-1]):
        if w.start not in covered[w.series_id] and versions[w.series_id].get(w.start) == w.built_from:
            chosen.append(w)
            covered[w.series_id].add(w.start)
    for sid in ids:
        covered[sid].update(h for h in hours if h not in versions[sid])
    return chosen, covered


def _gaps(start: int, end: int, covered_hours: list[int]) -> list[tuple[int, int]]:
    """[start, end] minus the given whole hours, as inclusive (lo, hi) intervals."""
    out = []
    lo = start
    for h in covered_hours:
        if h > lo:
            out.append((lo, h - 1))
        lo = max(lo, h + HOUR)
    if lo <= end:
        out.append((lo, end))
    return out
