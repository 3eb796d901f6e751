"""Pyroscope's read API (querier.v1.QuerierService) over profefe's store, without HTTP: what
Grafana's Pyroscope data source and profilecli ask, answered from the same metadata, windows and
merges as the profefe API and the web UI.

- A profile type is one sample type of one profefe type: a stored CPU profile of Go
  (`samples/count`, `cpu/nanoseconds`, period `cpu/nanoseconds`) is listed as
  `process_cpu:samples:count:cpu:nanoseconds` and `process_cpu:cpu:nanoseconds:cpu:nanoseconds`.
- Merges (flame graphs, pprof) are within one service, so those selectors need `service_name`;
  label names and values and the profile types look across every service when none is given.
- The timeline sums the per-profile totals the metadata keeps (no blob is read), as
  `/api/0/timeline` does.
"""
from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from typing import Iterable

from services.query_api import querier_pb2 as pb
from services.query_api.config import QueryConfig
from services.query_api.explore import MAX_LABEL_PAIRS, sample_total
from services.query_api.query import Merged, Stores, merged_query
from services.query_api.selector import ProfileTypeId, Selector, parse_selector, selectors, window
from shared import pprof
from shared.errors import BadRequest, NotFound
from shared.model import Labels, ProfileType, Query
from shared.pyroscope import KEPT_NAME_LABEL, NAME_LABEL, PROFILE_TYPE_LABEL, SERVICE_LABEL, TYPE_NAMES, type_of_name
from shared.pyroscope_types_pb2 import LabelPair
from shared.windows import HOUR, epoch, floor_to

MAX_POINTS = 11_000  # per series, as Prometheus allows per range query
MAX_GROUPS = 1000  # series one SelectSeries may answer before its limit is applied
MAX_SERIES = 10_000  # label sets one Series answers
SPECIAL_LABELS = (NAME_LABEL, PROFILE_TYPE_LABEL, SERVICE_LABEL)


def _services(stores: Stores, sel: Selector) -> list[str]:
    return [sel.service] if sel.service else stores.meta.services()


def _query(service: str, sel: Selector, start: datetime, end: datetime) -> Query:
    return Query(service=service, type=sel.type, labels=sel.labels, start=start, end=end)


def _profile_types(stores: Stores, query: Query, sel: Selector) -> list[pb.ProfileType]:
    """The profile types one service's matches hold (of the selector's type and sample type)."""
    out = []
    kept_names: list[str] | None = None
    for raw_type, signature in stores.meta.signatures(query):
        ptype = ProfileType(raw_type)
        if ptype is ProfileType.TRACE or (sel.type is not None and ptype is not sel.type):
            continue
        names = [TYPE_NAMES[ptype]]
        if ptype is ProfileType.OTHER:
            if kept_names is None:
                pairs = stores.meta.label_pairs(replace(query, type=ProfileType.OTHER), MAX_LABEL_PAIRS)
                kept_names = [v for k, v in pairs if k == KEPT_NAME_LABEL]
            wanted = next((lb.value for lb in sel.labels if lb.key == KEPT_NAME_LABEL), None)
            names = [wanted] if wanted else (kept_names or names)
        (period_type, period_unit), cols = pprof.signature_types(signature)
        for name in names:
            for sample_type, unit in cols:
                if sel.sample_type is not None and sample_type != sel.sample_type:
                    continue
                tid = ProfileTypeId(name, sample_type, unit, period_type, period_unit)
                out.append(pb.ProfileType(ID=tid.id, name=name, sample_type=sample_type, sample_unit=unit,
                                          period_type=period_type, period_unit=period_unit))
    return out


def profile_types(stores: Stores, req: pb.ProfileTypesRequest) -> pb.ProfileTypesResponse:
    start, end = window(req.start, req.end)
    found: dict[str, pb.ProfileType] = {}
    for service in stores.meta.services():
        for t in _profile_types(stores, _query(service, Selector(), start, end), Selector()):
            found.setdefault(t.ID, t)
    return pb.ProfileTypesResponse(profile_types=[found[k] for k in sorted(found)])


def _each_match(stores: Stores, matchers: Iterable[str], start_ms: int, end_ms: int
                ) -> Iterable[tuple[str, Query, Selector, list[pb.ProfileType]]]:
    """(service, query, selector, its profile types) for every service with data under a matcher."""
    start, end = window(start_ms, end_ms)
    for sel in selectors(list(matchers)):
        for service in _services(stores, sel):
            query = _query(service, sel, start, end)
            types = _profile_types(stores, query, sel)
            if types:
                yield service, query, sel, types


def label_names(stores: Stores, req: pb.LabelNamesRequest) -> pb.LabelNamesResponse:
    names: set[str] = set()
    for _service, query, _sel, _types in _each_match(stores, req.matchers, req.start, req.end):
        names.update(SPECIAL_LABELS)
        names.update(k for k, _v in stores.meta.label_pairs(query, MAX_LABEL_PAIRS))
    return pb.LabelNamesResponse(names=sorted(names))


def label_values(stores: Stores, req: pb.LabelValuesRequest) -> pb.LabelValuesResponse:
    name = req.name.strip()
    if not name:
        raise BadRequest("missing the label name")
    values: set[str] = set()
    for service, query, _sel, types in _each_match(stores, req.matchers, req.start, req.end):
        if name == SERVICE_LABEL:
            values.add(service)
        elif name == NAME_LABEL:
            values.update(t.name for t in types)
        elif name == PROFILE_TYPE_LABEL:
            values.update(t.ID for t in types)
        else:
            values.update(v for k, v in stores.meta.label_pairs(query, MAX_LABEL_PAIRS) if k == name)
    return pb.LabelValuesResponse(names=sorted(values))


def _stored_series(stores: Stores, query: Query, ptypes: set[ProfileType]) -> set[tuple[ProfileType, Labels, str]]:
    """(type, labels, signature) of the series with profiles in the query's hours (the windows'
    series table and hourly counters; without windows, the profiles' own rows)."""
    if stores.windows is None:
        return {(m.type, m.labels, m.signature) for m in stores.meta.find(query) if m.type in ptypes}
    first, last = floor_to(epoch(query.start), HOUR), floor_to(epoch(query.end), HOUR)
    out = set()
    for ptype in ptypes:
        found = stores.windows.series_of(query.service, ptype, query.labels, active_in=(first, last))
        out |= {(s.type, s.labels, s.signature) for s in found}
    return out


def series(stores: Stores, req: pb.SeriesRequest) -> pb.SeriesResponse:
    """The label sets of the series with profiles in the range (to the hour): one per stored
    series and sample type, with `service_name`, `__name__` and `__profile_type__`; only the
    `label_names` asked when there are some."""
    wanted = {n for n in req.label_names if n}
    out: dict[tuple[tuple[str, str], ...], pb.Labels] = {}
    for service, query, sel, types in _each_match(stores, req.matchers, req.start, req.end):
        ptypes = {type_of_name(t.name)[0] for t in types}
        for ptype, labels, signature in _stored_series(stores, query, ptypes):
            kept = next((lb.value for lb in labels if lb.key == KEPT_NAME_LABEL), None)
            name = kept if ptype is ProfileType.OTHER and kept else TYPE_NAMES[ptype]
            (period_type, period_unit), cols = pprof.signature_types(signature)
            for sample_type, unit in cols:
                if sel.sample_type is not None and sample_type != sel.sample_type:
                    continue
                tid = ProfileTypeId(name, sample_type, unit, period_type, period_unit).id
                pairs = sorted({(SERVICE_LABEL, service), (NAME_LABEL, name), (PROFILE_TYPE_LABEL, tid),
                                *((lb.key, lb.value) for lb in labels if lb.key != KEPT_NAME_LABEL)})
                key = tuple(p for p in pairs if not wanted or p[0] in wanted)
                if key not in out and len(out) >= MAX_SERIES:
                    raise BadRequest(f"more than {MAX_SERIES} series match: narrow the selector")
                out.setdefault(key, pb.Labels(labels=[LabelPair(name=k, value=v) for k, v in key]))
    return pb.SeriesResponse(labels_set=[out[k] for k in sorted(out)])


# Merges -----------------------------------------------------------------------------------


def merge_query(type_id: str, label_selector: str, start_ms: int, end_ms: int) -> tuple[Query, ProfileTypeId]:
    """The profefe merge a Select* request asks for: one service, one type, its labels."""
    tid = ProfileTypeId.parse(type_id)
    sel = parse_selector(label_selector)
    if sel.type is not None and sel.type is not tid.type:
        raise BadRequest("the label selector's profile type is not the requested one")
    if not sel.service:
        raise BadRequest(f'the label selector needs {SERVICE_LABEL}="..." (profiles merge within one service)')
    if tid.type is ProfileType.TRACE:
        raise BadRequest('"trace" profiles cannot be merged')
    start, end = window(start_ms, end_ms)
    labels = Labels.of([*((lb.key, lb.value) for lb in sel.labels), *tid.labels()])
    return Query(service=sel.service, type=tid.type, labels=labels, start=start, end=end), tid


def _refuse_stack_trace_selector(
        req: pb.SelectMergeStacktracesRequest | pb.SelectMergeProfileRequest | pb.SelectSeriesRequest) -> None:
    stacks = req.stack_trace_selector
    if req.HasField("stack_trace_selector") and (len(stacks.call_site) or stacks.HasField("go_pgo")):
        raise BadRequest("stack trace selectors are not supported")


def _refuse_selectors(req: pb.SelectMergeStacktracesRequest | pb.SelectMergeProfileRequest) -> None:
    _refuse_stack_trace_selector(req)
    if len(req.profile_id_selector):
        raise BadRequest("profile id selectors are not supported")


def _merged(stores: Stores, query: Query, cfg: QueryConfig) -> Merged | None:
    try:
        return merged_query(stores, query, cfg)
    except NotFound:
        return None


def _column(profile: pprof.Profile, tid: ProfileTypeId) -> int:
    names = [t for t, _unit in pprof.sample_types(profile)]
    if tid.sample_type not in names:
        raise BadRequest(f'no sample type "{tid.sample_type}" (have {", ".join(names)})')
    return names.index(tid.sample_type)


def select_merge_stacktraces(stores: Stores, req: pb.SelectMergeStacktracesRequest,
                             cfg: QueryConfig) -> pb.SelectMergeStacktracesResponse:
    if req.format == pb.PROFILE_FORMAT_TREE:
        raise BadRequest("the tree format is not supported: ask for the flame graph")
    _refuse_selectors(req)
    query, tid = merge_query(req.profile_typeID, req.label_selector, req.start, req.end)
    budget = cfg.flame_max_nodes
    if req.HasField("max_nodes") and req.max_nodes > 0:
        budget = min(budget, req.max_nodes)
    merged = _merged(stores, query, cfg)
    if merged is None:
        return pb.SelectMergeStacktracesResponse(flamegraph=pb.FlameGraph(names=["total"], levels=[
            pb.Level(values=[0, 0, 0, 0])]))
    try:
        tree = pprof.flame_tree(merged.merger.encode(), sample_type=tid.sample_type, budget=budget, top_rows=0)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return pb.SelectMergeStacktracesResponse(flamegraph=flame_graph(tree))


def flame_graph(tree: pprof.FlameTree) -> pb.FlameGraph:
    """Pyroscope's flame graph: `names`, and per depth four numbers per node (offset from the end
    of the node before it on that level, total, self, name index); children start at their
    parent's left edge, in the tree's order (heaviest first). The root is named "total".

    The tree's nodes come in pre-order, so a node starts where its parent's previous child ended
    (or at its parent's start, for the first child)."""
    levels: list[list[int]] = []
    ends: list[int] = []
    cursor: list[int] = [0]  # per depth, where the next node at that depth starts
    max_self = 0
    totals, selfs = tree.total[0], tree.self[0]
    for i, depth in enumerate(tree.depth):
        if depth == len(levels):
            levels.append([])
            ends.append(0)
        while len(cursor) <= depth + 1:
            cursor.append(0)
        start, total = cursor[depth], totals[i]
        levels[depth] += [start - ends[depth], total, selfs[i], tree.name[i] + 1 if depth else 0]
        ends[depth] = start + total
        cursor[depth] = start + total
        cursor[depth + 1] = start
        max_self = max(max_self, selfs[i])
    return pb.FlameGraph(names=["total", *tree.names], levels=[pb.Level(values=v) for v in levels],
                         total=totals[0] if totals else 0, max_self=max_self)


def select_merge_profile(stores: Stores, req: pb.SelectMergeProfileRequest, cfg: QueryConfig) -> pprof.Profile:
    """The merged pprof with only the asked sample type, as Pyroscope answers it (empty when
    nothing matches)."""
    _refuse_selectors(req)
    query, tid = merge_query(req.profile_typeID, req.label_selector, req.start, req.end)
    merged = _merged(stores, query, cfg)
    if merged is None:
        return pprof.Profile()
    profile = merged.profile()
    col = _column(profile, tid)
    kept_type, kept_unit = profile.sample_type[col].type, profile.sample_type[col].unit
    del profile.sample_type[:]
    profile.sample_type.add(type=kept_type, unit=kept_unit)
    samples = [s for s in profile.sample if s.value[col]]
    for s in samples:
        s.value[:] = [s.value[col]]
    del profile.sample[:]
    profile.sample.extend(samples)
    profile.default_sample_type = 0
    return profile


# Series -----------------------------------------------------------------------------------


def _step_ms(step: float, start: datetime, end: datetime) -> int:
    span_ms = (epoch(end) - epoch(start) + 1) * 1000
    if not math.isfinite(step) or step < 0:
        raise BadRequest("step is a number of seconds, not negative")
    if step == 0:
        return max(1000, math.ceil(span_ms / 1000 / 1000) * 1000)  # at most about 1000 points
    step_ms = max(1000, round(step * 1000))  # profiles are stored at the second
    if span_ms / step_ms > MAX_POINTS:
        raise BadRequest(f"more than {MAX_POINTS} points per series: widen the step")
    return step_ms


def _points(stores: Stores, query: Query, sample_type: str, step_ms: int, average: bool) -> list[pb.Point]:
    sums: dict[int, int] = {}
    counts: dict[int, int] = {}
    for at, signature, totals in stores.meta.sample_totals(query):
        total = sample_total(signature, totals, sample_type)
        if total is None:
            continue
        bucket = at * 1000 // step_ms * step_ms
        sums[bucket] = sums.get(bucket, 0) + total
        counts[bucket] = counts.get(bucket, 0) + 1
    return [pb.Point(timestamp=t, value=sums[t] / counts[t] if average else float(sums[t])) for t in sorted(sums)]


def select_series(stores: Stores, req: pb.SelectSeriesRequest) -> pb.SelectSeriesResponse:
    _refuse_stack_trace_selector(req)
    query, tid = merge_query(req.profile_typeID, req.label_selector, req.start, req.end)
    step_ms = _step_ms(req.step, query.start, query.end)
    average = req.HasField("aggregation") and req.aggregation == pb.TIME_SERIES_AGGREGATION_TYPE_AVERAGE
    group_by = list(dict.fromkeys(g.strip() for g in req.group_by if g.strip()))
    if len(group_by) > 1:
        raise BadRequest("group by one label at most")
    groups: list[tuple[list[tuple[str, str]], Query]] = [([], query)]
    if group_by and group_by[0] == SERVICE_LABEL:
        groups = [([(SERVICE_LABEL, query.service)], query)]
    elif group_by:
        key = group_by[0]
        values = [v for k, v in stores.meta.label_pairs(query, MAX_LABEL_PAIRS) if k == key]
        if len(values) > MAX_GROUPS:
            raise BadRequest(f"more than {MAX_GROUPS} values of {key!r} to group by")
        groups = [([(key, v)], replace(query, labels=Labels.of([*((lb.key, lb.value) for lb in query.labels),
                                                                  (key, v)]))) for v in values]
    series = []
    for labels, q in groups:
        points = _points(stores, q, tid.sample_type, step_ms, average)
        if points:
            series.append(pb.Series(labels=[LabelPair(name=k, value=v) for k, v in labels], points=points))
    if req.HasField("limit") and req.limit > 0 and len(series) > req.limit:
        series.sort(key=lambda s: -sum(p.value for p in s.points))
        series = series[:req.limit]
    return pb.SelectSeriesResponse(series=series)
