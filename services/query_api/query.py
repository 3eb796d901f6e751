"""What the query API does, without HTTP: parse a find, run it, merge what it found.

Merges stream: stored profiles are folded into one `Merger` one at a time, as the blob store reads
them (a few ahead, where it waits on a network), so memory holds the running result and a few
inputs, never all of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from services.query_api import merge_plan
from services.query_api.config import QueryConfig
from shared import pprof
from shared.errors import BadRequest, NotFound, Unavailable
from shared.model import MAX_LABELS, Labels, ProfileMeta, ProfileType, Query, blob_key, has_control, is_id, parse_time
from shared.ports import BlobStore, MetaStore, WindowStore


# A find names at most MAX_LABELS pairs: PostgreSQL planned 64 in 0.3 s, 128 in 3.4 s and 256 in
# 82 s on an empty table; SQLite refuses 10,000 outright as too deep.


@dataclass(frozen=True)
class Stores:
    meta: MetaStore
    blobs: BlobStore
    windows: WindowStore | None = None  # the compactor's windows, where a deployment has them


def parse_query(params: Mapping[str, str], *, merging: bool = False) -> Query:
    """profefe's find/merge parameters -> a `Query`; unknown parameters are ignored."""
    service = (params.get("service") or "").strip()
    if not service:
        raise BadRequest('missing "service"')
    if has_control(service):
        raise BadRequest('"service" contains control characters')
    raw_type = (params.get("type") or "").strip()
    ptype = None
    if raw_type:
        ptype = ProfileType.parse(raw_type)
    if merging:
        if ptype is None:
            raise BadRequest('missing "type"')
        if not ptype.is_pprof:
            raise BadRequest(f'"{ptype}" profiles cannot be merged')
    labels = Labels.parse(params.get("labels"))
    if len(labels) > MAX_LABELS:
        raise BadRequest(f"more than {MAX_LABELS} labels")
    if any(has_control(lb.key) or has_control(lb.value) for lb in labels):
        raise BadRequest('"labels" contain control characters')
    window = []
    for name in ("from", "to"):
        raw = params.get(name)
        if not raw:
            raise BadRequest(f'missing "{name}"')
        window.append(parse_time(name, raw))
    limit = None
    if params.get("limit") is not None:
        limit = _positive_int("limit", params["limit"])
    return Query(service=service, type=ptype, labels=labels, start=window[0], end=window[1], limit=limit)


def _positive_int(name: str, raw: str) -> int:
    text = raw.strip()
    if not text.isdigit() or int(text) < 1:
        raise BadRequest(f'bad "{name}" "{raw}": want a positive integer')
    return int(text)


def find(stores: Stores, query: Query) -> list[ProfileMeta]:
    found = stores.meta.find(query)
    if not found:
        raise NotFound("nothing found")
    return found


def parse_ids(raw: str) -> list[str]:
    """`id1+id2+...` (a space is what `+` becomes when a client form-decodes the path)."""
    ids = [part for part in raw.replace(" ", "+").split("+") if part]
    if not ids:
        raise NotFound("nothing found")
    return list(dict.fromkeys(ids))


def get_metas(stores: Stores, ids: Sequence[str]) -> list[ProfileMeta]:
    """The metadata of every id, in the order asked; the first unknown one is a 404 naming it."""
    known = {m.id: m for m in stores.meta.get_many([i for i in ids if is_id(i)])}
    for i in ids:
        if i not in known:
            shown = i if len(i) <= 64 else i[:64] + "..."  # the id is the client's: never echo much of it
            raise NotFound(f'nothing found: no profile with id "{shown}"')
    return [known[i] for i in ids]


def read_blob(stores: Stores, meta: ProfileMeta) -> bytes:
    try:
        return stores.blobs.get(blob_key(meta.id))
    except NotFound:
        raise _no_data(meta) from None


def _no_data(meta: ProfileMeta) -> NotFound:
    return NotFound(f'nothing found: no stored data for profile "{meta.id}"')


def merge(stores: Stores, metas: Sequence[ProfileMeta], cfg: QueryConfig) -> bytes:
    """One gzip pprof merging `metas` (in order); traces and incompatible profiles are refused."""
    return merge_metas(stores, metas, cfg).write(level=1)


def merge_metas(stores: Stores, metas: Sequence[ProfileMeta], cfg: QueryConfig) -> pprof.Merger:
    _check_count(len(metas), cfg)
    for m in metas:
        if not m.type.is_pprof:
            raise BadRequest(f'profile "{m.id}" is a {m.type} and cannot be merged')
    merger = pprof.Merger()
    done = 0
    try:
        for data in stores.blobs.get_many([blob_key(m.id) for m in metas]):
            merger.add(data, max_decompressed=cfg.max_decompressed_bytes)
            done += 1
    except NotFound:
        raise _no_data(metas[done]) from None
    return merger


def merge_query(stores: Stores, query: Query, cfg: QueryConfig) -> tuple[bytes, str]:
    """The merge route: every profile matching `query` merged, through the windows when there are
    some (see `merge_plan`), else straight from the raw profiles; `limit` always reads raw profiles.
    Returns the gzip pprof and its file name."""
    merged = merged_query(stores, query, cfg)
    return merged.merger.write(level=1), merged.filename


@dataclass(frozen=True)
class Merged:
    """A merge and how many stored profiles it holds (a window counts its profiles), which is
    what a mean per profile divides by. The merge stays in the native merger until a caller asks
    for it as bytes (`merger.encode()`, `merger.write()`) or as a Profile to change."""

    merger: pprof.Merger
    profiles: int
    filename: str

    def profile(self) -> pprof.Profile:
        return self.merger.result()


def merged_query(stores: Stores, query: Query, cfg: QueryConfig) -> Merged:
    """Every profile matching `query` merged, as `merge_query` explains."""
    if stores.windows is None or not cfg.use_windows or query.limit is not None:
        found = find(stores, query)
        return Merged(merge_metas(stores, found, cfg), len(found), filename(found))
    name = f"{query.service}-{query.type}-merged.pb.gz"
    for _attempt in range(3):
        planned = merge_plan.plan_merge(stores.meta, stores.windows, query)
        if not planned.inputs:
            raise NotFound("nothing found")
        _check_count(planned.inputs, cfg)
        try:
            count = sum(w.profiles for w in planned.windows) + len(planned.raw)
            return Merged(_merge_planned(stores, planned, cfg), count, name)
        except _WindowGone:
            continue  # a compactor replaced a window while we read: plan again
    raise Unavailable("the pre-merged windows of this range kept being replaced while read; try again")


class _WindowGone(Exception):
    """An input the plan named is gone: the compactor replaced or pruned it meanwhile."""


def _merge_planned(stores: Stores, planned: merge_plan.MergePlan, cfg: QueryConfig) -> pprof.Merger:
    merger = pprof.Merger()
    keys = [w.blob_key for w in planned.windows if w.blob_key is not None]
    assert len(keys) == len(planned.windows)
    keys += [blob_key(m.id) for m in planned.raw]
    try:
        for data in stores.blobs.get_many(keys):
            merger.add(data, max_decompressed=cfg.max_decompressed_bytes)
    except NotFound:
        # A window replaced, or a raw profile folded into a rebuilt window or pruned, since we planned.
        raise _WindowGone from None
    return merger


def _check_count(n: int, cfg: QueryConfig) -> None:
    if n > cfg.max_merge_profiles:
        raise BadRequest(
            f"{n} profiles match, more than the {cfg.max_merge_profiles} "
            'one merge may read; narrow the window or set "limit"'
        )


def filename(metas: Sequence[ProfileMeta], data: bytes | None = None) -> str:
    """`<service>-<type>-<id>.pb.gz` for one profile, `<service>-<type>-merged.pb.gz` for several."""
    services = {m.service for m in metas}
    types = {m.type.value for m in metas}
    service = services.pop() if len(services) == 1 else "profiles"
    ptype = types.pop() if len(types) == 1 else "mixed"
    if data is None:
        return f"{service}-{ptype}-merged.pb.gz"
    m = metas[0]
    if m.type is ProfileType.TRACE:
        ext = "trace"
    elif data.startswith(b"\x1f\x8b"):
        ext = "pb.gz"
    else:
        ext = "pb"
    return f"{service}-{ptype}-{m.id}.{ext}"
