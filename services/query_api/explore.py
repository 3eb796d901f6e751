"""The read APIs behind the web UI, without HTTP: label pairs, timeline buckets, flame graph data,
and diffs, as a pprof and as JSON. Merges go through `query.merged_query`, so windows and raw
profiles give the same answer here as on `/merge`.

Aggregation: `sum` adds every profile (profefe's merge); `mean` divides the sum by the number of
profiles merged, which is what a snapshot (heap in-use, goroutines) means over a range.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Mapping

from services.query_api import flame
from services.query_api.config import QueryConfig
from services.query_api.query import Merged, Stores, merged_query, parse_query
from shared import pprof
from shared.errors import BadRequest, NotFound
from shared.model import Labels, Query, parse_time
from shared.windows import epoch

AGGREGATIONS = ("sum", "mean")
MAX_BUCKETS = 1000
MAX_LABEL_PAIRS = 5000
BASE_LABEL = ("pprof::base", "true")  # how `go tool pprof -diff_base` marks the base's samples


def aggregation(params: Mapping[str, str]) -> str:
    raw = (params.get("aggregation") or "sum").strip()
    if raw not in AGGREGATIONS:
        raise BadRequest(f'bad "aggregation" "{raw}": want sum or mean')
    return raw


def positive(params: Mapping[str, str], name: str, default: int, most: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not text.isdigit() or int(text) < 1:
        raise BadRequest(f'bad "{name}" "{raw}": want a positive integer')
    return min(int(text), most)


def scale_of(merged: Merged, agg: str) -> float:
    return 1.0 / merged.profiles if agg == "mean" and merged.profiles else 1.0


def mean_profile(profile: pprof.Profile, profiles: int) -> pprof.Profile:
    """Every sample value divided by `profiles`, rounded to the nearest integer (pprof holds
    integers); durations are divided too, so a rate stays a rate."""
    if profiles <= 1:
        return profile
    for sample in profile.sample:
        sample.value[:] = [_div(v, profiles) for v in sample.value]
    profile.duration_nanos = _div(profile.duration_nanos, profiles)
    return profile


def _div(value: int, by: int) -> int:
    q, r = divmod(abs(value), by)
    q += 1 if 2 * r >= by else 0
    return q if value >= 0 else -q


# Labels -----------------------------------------------------------------------------------


def labels(stores: Stores, params: Mapping[str, str]) -> dict[str, Any]:
    """What a selection can narrow to, among the matches of a find (service, optional type,
    window, labels): the types present whatever the type asked, and key -> sorted values.

    The labels already chosen narrow the values as facets do: a key not chosen offers the values
    of the profiles that match every chosen pair; a chosen key offers those matching the other
    keys' pairs, so `version=1.5` still lists `1.4` beside it, and `zone` only the zones that
    version ran in."""
    query = parse_query(params)
    out: dict[str, list[str]] = {}
    for key, value in stores.meta.label_pairs(query, MAX_LABEL_PAIRS):
        out.setdefault(key, []).append(value)
    for chosen in dict.fromkeys(lb.key for lb in query.labels):
        others = Labels(tuple(lb for lb in query.labels if lb.key != chosen))
        pairs = stores.meta.label_pairs(replace(query, labels=others), MAX_LABEL_PAIRS, key=chosen)
        out[chosen] = [value for _key, value in pairs]
    types = list(dict.fromkeys(t for t, _signature in stores.meta.signatures(query)))  # sorted by type
    return {"types": types, "labels": {k: out[k] for k in sorted(out) if out[k]}}


# Timeline ---------------------------------------------------------------------------------


def timeline(stores: Stores, params: Mapping[str, str]) -> dict[str, Any]:
    """Profiles per bucket and the sum (or mean per profile) of one sample type per bucket, from
    the totals each profile's row keeps: no blob is read.

    Rows stored before totals were recorded (migration 0003 added them; only a blob holds them)
    are counted in `profiles` and in `without_totals`, and left out of `values`: the sum is that
    of the profiles with totals, and the mean divides by those only, so old rows never drag it
    toward zero."""
    query = parse_query(params, merging=True)
    agg = aggregation(params)
    start, end = epoch(query.start), epoch(query.end)
    wanted = positive(params, "buckets", 60, MAX_BUCKETS)
    step = max(1, math.ceil((end - start + 1) / wanted))
    n = math.ceil((end - start + 1) / step)
    counts = [0] * n
    known = [0] * n  # profiles of the bucket whose totals are recorded
    sums = [0] * n
    unknown = 0
    types: list[str] = []
    chosen = (params.get("sample_type") or "").strip()
    rows = stores.meta.sample_totals(query)
    for _at, signature, _totals in rows:
        for name, _unit in pprof.signature_types(signature)[1]:
            if name not in types:
                types.append(name)
    if not chosen and types:
        chosen = types[-1]
    for at, signature, totals in rows:
        i = (at - start) // step
        counts[i] += 1
        total = sample_total(signature, totals, chosen)
        if total is None:
            unknown += 1
            continue
        known[i] += 1
        sums[i] += total
    values: list[float] = list(sums)
    if agg == "mean":
        values = [flame.scaled(s, 1 / c) if c else 0 for s, c in zip(sums, known)]
    return {
        "start": start, "step": step, "sample_types": types, "sample_type": chosen, "aggregation": agg,
        "profiles": counts, "values": values, "without_totals": unknown,
    }


def sample_total(signature: str, totals: tuple[int, ...] | None, sample_type: str) -> int | None:
    """The total of `sample_type` a profile's row keeps (`MetaStore.sample_totals`); None when
    the row has no totals or its profile no such sample type."""
    names = [name for name, _unit in pprof.signature_types(signature)[1]]
    if totals is None or sample_type not in names:
        return None
    return totals[names.index(sample_type)]


# Flame graphs -------------------------------------------------------------------------------


def flamegraph(stores: Stores, params: Mapping[str, str], cfg: QueryConfig) -> dict[str, Any]:
    query = parse_query(params, merging=True)
    agg = aggregation(params)
    budget = positive(params, "max_nodes", cfg.flame_max_nodes, cfg.flame_max_nodes)
    merged = merged_query(stores, query, cfg)
    try:
        out = flame.flame_json(merged.merger.encode(), sample_type=params.get("sample_type"), budget=budget,
                               scale=scale_of(merged, agg))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    out.update(aggregation=agg, profiles=merged.profiles)
    return out


@dataclass(frozen=True)
class DiffQuery:
    base: Query
    target: Query


def parse_diff(params: Mapping[str, str]) -> DiffQuery:
    """The target is the usual selection; `base_from`, `base_to` and `base_labels` override it for
    the base, so two ranges, or one range under two label values, are a few parameters apart."""
    target = parse_query(params, merging=True)
    base = target
    if params.get("base_from"):
        base = replace(base, start=parse_time("base_from", params["base_from"]))
    if params.get("base_to"):
        base = replace(base, end=parse_time("base_to", params["base_to"]))
    if "base_labels" in params:
        base = replace(base, labels=Labels.parse(params.get("base_labels")))
    if base.start > base.end:
        raise BadRequest('"base_from" is after "base_to"')
    if base == target:
        raise BadRequest('a diff needs a base that differs: set "base_from"/"base_to" or "base_labels"')
    return DiffQuery(base, target)


def _side(stores: Stores, query: Query, cfg: QueryConfig, which: str) -> Merged:
    try:
        return merged_query(stores, query, cfg)
    except NotFound:
        raise NotFound(f"nothing found for the {which}") from None


def diff_flamegraph(stores: Stores, params: Mapping[str, str], cfg: QueryConfig) -> dict[str, Any]:
    dq = parse_diff(params)
    agg = aggregation(params)
    budget = positive(params, "max_nodes", cfg.flame_max_nodes, cfg.flame_max_nodes)
    base, target = _side(stores, dq.base, cfg, "base"), _side(stores, dq.target, cfg, "target")
    try:
        out = flame.diff_json(base.merger.encode(), target.merger.encode(), sample_type=params.get("sample_type"),
                              budget=budget, base_scale=scale_of(base, agg), target_scale=scale_of(target, agg))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    out.update(aggregation=agg, base_profiles=base.profiles, target_profiles=target.profiles)
    return out


def diff_pprof(stores: Stores, params: Mapping[str, str], cfg: QueryConfig) -> tuple[bytes, str]:
    """The target merged with the base negated, each base sample labelled `pprof::base=true`, the
    profile `go tool pprof -diff_base base target` builds, so `-top` on it shows the change."""
    dq = parse_diff(params)
    agg = aggregation(params)
    base, target = _side(stores, dq.base, cfg, "base"), _side(stores, dq.target, cfg, "target")
    base_p, target_p = base.profile(), target.profile()
    if agg == "mean":
        mean_profile(base_p, base.profiles)
        mean_profile(target_p, target.profiles)
    strings = base_p.string_table
    strings.append(BASE_LABEL[0])
    strings.append(BASE_LABEL[1])
    key, value = len(strings) - 2, len(strings) - 1
    for sample in base_p.sample:
        sample.value[:] = [-v for v in sample.value]
        sample.label.add(key=key, str=value)
    merger = pprof.Merger()
    try:
        merger.add(target_p)
        merger.add(base_p)
    except pprof.IncompatibleProfiles as exc:
        raise BadRequest(f"the base and the target cannot be compared: {exc}") from None
    name = f"{dq.target.service}-{dq.target.type}-diff.pb.gz"
    return merger.write(level=1), name


def merge_aggregated(stores: Stores, params: Mapping[str, str], cfg: QueryConfig) -> tuple[bytes, str]:
    """`/merge` with `aggregation`: the sum (the default, profefe's) or the mean per profile."""
    merged = merged_query(stores, parse_query(params, merging=True), cfg)
    if aggregation(params) == "mean":
        return pprof.write(mean_profile(merged.profile(), merged.profiles), level=1), merged.filename
    return merged.merger.write(level=1), merged.filename
