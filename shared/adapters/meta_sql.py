"""Profile metadata in SQL (SQLAlchemy Core): SQLite for the embedded collector, PostgreSQL in
production, the same statements on both. `put`, which every upload waits on, runs its five
statements on the connection's DBAPI cursor (`shared.adapters.sql_rows`).

`created_at` is stored as integer epoch seconds, so the inclusive window compares exactly at
second precision on every engine. Labels live in a child table, one row per pair, indexed on
(key, value, profile_id); a label filter on pprof profiles goes through their series instead
(`_where`), and only traces are filtered by probing that table.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import replace
from collections import Counter, defaultdict
from typing import Any, Iterable, Sequence

import sqlalchemy as sa

from shared.adapters.settings import SqlTimeouts
from shared.adapters.sql_rows import RowInsert, execute, placeholder
from shared.adapters.sql import (
    CHUNK,
    chunks,
    create_engine,
    migrate,
    profile_labels,
    profiles,
    series,
    series_hours,
    series_labels,
    series_labels_json,
    series_labels_of,
    series_with,
    sqlite_url,
    totals_json,
    totals_of,
    unavailable_on_error,
    windows,
)
from shared.model import Label, Labels, ProfileMeta, ProfileType, Query
from shared.windows import HOUR, Series, epoch, floor_to, from_epoch

__all__ = ["SqlMetaStore", "migrate", "sqlite_url"]

log = logging.getLogger(__name__)


class SqlMetaStore:
    """`MetaStore` over SQLAlchemy Core; the schema comes from `migrate(url)`."""

    def __init__(self, url: str, timeouts: SqlTimeouts | None = None) -> None:
        self.url = url
        self.engine = create_engine(url, timeouts)
        self._put = _PutStatements(self.engine.dialect)
        p = profiles
        # A read by id is every single-profile download: building the statement and its cache key
        # anew each time, and rendering the URL for the error message, were a seventh of its CPU.
        self._get_by_ids = _WITH_SERIES_LABELS.where(p.c.id.in_(sa.bindparam("ids", expanding=True)))
        self._unavailable = unavailable_on_error(url)  # stateless: one for every call

    def close(self) -> None:
        self.engine.dispose()

    def put(self, metas: Sequence[ProfileMeta]) -> None:
        if not metas:
            return
        first: dict[str, ProfileMeta] = {}
        for m in metas:
            first.setdefault(m.id, m)  # a repeated id in one batch: the first wins, as across batches
        metas = list(first.values())
        in_series = {m.id: Series.of(m.service, m.type, m.labels, m.signature) for m in metas if m.type.is_pprof}
        rows = [(m.id, m.service, m.type.value, epoch(m.created_at), epoch(m.received_at), m.size, m.signature,
                 in_series[m.id].id if m.id in in_series else None, totals_json(m.totals))
                for m in metas]
        put = self._put
        with self._guard(), self.engine.begin() as conn:
            # ON CONFLICT DO NOTHING ... RETURNING id names the rows really inserted: an id stored
            # before (a redelivery) gets no labels and bumps no counter a second time.
            fresh_ids: set[str] = set()
            for chunk in chunks(rows, CHUNK // 8):
                fresh_ids.update(r[0] for r in put.profiles(conn, chunk))
            if not fresh_ids:
                return
            fresh = [m for m in metas if m.id in fresh_ids]
            label_rows = [(m.id, i, lb.key, lb.value) for m in fresh for i, lb in enumerate(m.labels)]
            for pairs in chunks(label_rows, CHUNK // 4):
                put.labels(conn, pairs)
            self._bump_hours(conn, [(in_series[m.id], epoch(m.created_at)) for m in fresh if m.id in in_series])
            # Each new profile takes its counter's value after the bump (the counter rows are
            # still locked here): the compactor tells by it what a window already holds.
            for ids in chunks([m.id for m in fresh if m.id in in_series], CHUNK):
                execute(conn, put.stamp_versions(len(ids)), ids)

    def _bump_hours(self, conn: sa.Connection, placed: list[tuple[Series, int]]) -> None:
        """Record each new profile's series (with its label pairs, when it is new) and add one to its
        (series, hour) counter.

        Rows are upserted in key order so two concurrent puts lock them in the same order.
        """
        if not placed:
            return
        put = self._put
        known = {s.id: s for s, _ in placed}
        series_rows = [(s.id, s.service, s.type.value, s.signature, series_labels_json(s.labels))
                       for s in sorted(known.values(), key=lambda s: s.id)]
        fresh: set[str] = set()
        for chunk in chunks(series_rows, CHUNK // 8):
            fresh.update(r[0] for r in put.series(conn, chunk))
        label_rows = [(sid, i, known[sid].service, known[sid].type.value, lb.key, lb.value)
                      for sid in sorted(fresh) for i, lb in enumerate(known[sid].labels)]
        for pairs in chunks(label_rows, CHUNK // 4):
            put.series_labels(conn, pairs)
        counts = Counter((s.id, floor_to(at, HOUR)) for s, at in placed)
        hour_rows = [(sid, hour, n) for (sid, hour), n in sorted(counts.items())]
        for hours in chunks(hour_rows, CHUNK // 4):
            put.bump_hours(conn, hours)

    def find(self, query: Query) -> list[ProfileMeta]:
        p = profiles
        stmt = _WITH_SERIES_LABELS.where(_where(query))
        if query.limit is not None:
            stmt = stmt.order_by(p.c.created_at.desc(), p.c.id.desc()).limit(query.limit)
        else:
            stmt = stmt.order_by(p.c.created_at, p.c.id)
        with self._guard(), self.engine.connect() as conn:
            rows = list(conn.execute(stmt).all())
            if query.limit is not None:
                rows.reverse()
            return self._with_labels(conn, rows)

    def sample_totals(self, query: Query) -> list[tuple[int, str, tuple[int, ...] | None]]:
        p = profiles
        stmt = sa.select(p.c.created_at, p.c.signature, p.c.totals).where(_where(query)).order_by(p.c.created_at)
        with self._guard(), self.engine.connect() as conn:
            return [(at, sig, totals_of(raw) or None) for at, sig, raw in conn.execute(stmt)]

    def signatures(self, query: Query) -> list[tuple[str, str]]:
        p = profiles
        stmt = (sa.select(p.c.type, p.c.signature).distinct().where(_where(replace(query, type=None)))
                .order_by(p.c.type, p.c.signature))
        with self._guard(), self.engine.connect() as conn:
            found = [(t, sig) for t, sig in conn.execute(stmt)]
        unknown = _unknown_types(t for t, _ in found)
        return [(t, sig) for t, sig in found if t not in unknown] if unknown else found

    def label_pairs(self, query: Query, limit: int, key: str | None = None) -> list[tuple[str, str]]:
        pl = profile_labels
        stmt = (
            sa.select(pl.c.key, pl.c.value).distinct()
            .where(pl.c.profile_id.in_(sa.select(profiles.c.id).where(_where(query))))
            .order_by(pl.c.key, pl.c.value).limit(limit)
        )
        if key is not None:
            stmt = stmt.where(pl.c.key == key)
        with self._guard(), self.engine.connect() as conn:
            return [(k, v) for k, v in conn.execute(stmt)]

    def get_many(self, ids: Sequence[str]) -> list[ProfileMeta]:
        unique = list(dict.fromkeys(ids))
        if not unique:
            return []
        with self._guard(), self.engine.connect() as conn:
            rows: list[Any] = []
            for chunk in chunks(unique, CHUNK):
                rows.extend(conn.execute(self._get_by_ids, {"ids": chunk}).all())
            return self._with_labels(conn, rows)

    def services(self) -> list[str]:
        # Past raw retention a service's data lives on in its windows, which a merge still reads.
        with_windows = (sa.select(series.c.service)
                        .where(sa.exists().where(windows.c.series_id == series.c.id, windows.c.blob_key.is_not(None))))
        stmt = sa.union(sa.select(profiles.c.service), with_windows).order_by("service")
        with self._guard(), self.engine.connect() as conn:
            return [r[0] for r in conn.execute(stmt)]

    def ping(self) -> None:
        with self._guard(), self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def _with_labels(self, conn: sa.Connection, rows: Sequence[sa.Row]) -> list[ProfileMeta]:
        """Rows of `_WITH_SERIES_LABELS` as `ProfileMeta`. A row whose series has no key repeated
        takes the series' labels: labels are ordered by key, so they are then the profile's own, in
        order. The others' (traces, repeated keys) are read from profile_labels.

        Rows are unpacked by position and the values taken as stored (epoch seconds are UTC whole
        seconds already): a find of a region's week builds hundreds of these, and attribute lookups
        on rows and `ProfileMeta.__init__` were most of its time."""
        if unknown := _unknown_types(r[2] for r in rows):
            rows = [r for r in rows if r[2] not in unknown]
        labels: dict[str, Labels] = {}
        of_series: dict[str, Labels | None] = {}
        unlabelled: list[str] = []
        for pid, _, _, _, _, _, _, series_id, _, raw_labels in rows:
            if raw_labels is not None:
                if series_id not in of_series:
                    decoded = series_labels_of(raw_labels)
                    of_series[series_id] = decoded if _keys_unique(decoded) else None
                if (found := of_series[series_id]) is not None:
                    labels[pid] = found
                    continue
            unlabelled.append(pid)
        pl = profile_labels
        read: dict[str, list[Label]] = defaultdict(list)
        for chunk in chunks(unlabelled, CHUNK):
            stmt = (
                sa.select(pl.c.profile_id, pl.c.key, pl.c.value)
                .where(pl.c.profile_id.in_(chunk))
                .order_by(pl.c.profile_id, pl.c.position)
            )
            for pid, key, value in conn.execute(stmt).all():
                read[pid].append(Label(key, value))
        labels.update((pid, Labels(tuple(pairs))) for pid, pairs in read.items())
        stored, get_labels = ProfileMeta.stored, labels.get
        return [
            stored(pid, service, _TYPES[ptype], get_labels(pid, _NO_LABELS), from_epoch(created), from_epoch(received),
                   size, signature, totals_of(totals))
            for pid, service, ptype, created, received, size, signature, _, totals, _ in rows
        ]

    def _guard(self) -> unavailable_on_error:
        return self._unavailable


# Below this window a label filter probes each profile's labels instead of going through the
# series: at a fleet's size an hour of one service is a few dozen rows, a label a few hundred series.
PROBED_WINDOW = 6 * HOUR

# Profile rows with their series' labels (None for traces): most rows need no profile_labels read.
# The columns are named, in the order `_with_labels` unpacks them.
_WITH_SERIES_LABELS = sa.select(
    profiles.c.id, profiles.c.service, profiles.c.type, profiles.c.created_at, profiles.c.received_at,
    profiles.c.size, profiles.c.signature, profiles.c.series_id, profiles.c.totals,
    series.c.labels.label("series_labels"),
).select_from(profiles.outerjoin(series, series.c.id == profiles.c.series_id))
_TYPES = {t.value: t for t in ProfileType}
_NO_LABELS = Labels()
_unknown_seen: set[str] = set()
_unknown_lock = threading.Lock()


def _unknown_types(stored: Iterable[str]) -> set[str]:
    """The stored profile types among `stored` that this version does not know. Rows are written
    from `ProfileType`, so such a type was written by a newer version (the database shared, or
    this one downgraded): its profiles are left out of every answer, and the first time each type
    is met a warning says so, rather than every listing that meets one failing."""
    unknown = set(stored).difference(_TYPES)
    if not unknown:
        return unknown
    with _unknown_lock:
        first = sorted(unknown - _unknown_seen)
        _unknown_seen.update(first)
    for stored_type in first:
        log.warning("stored profiles of type %r are left out of every answer: this version of profefe-py "
                    "does not know that type (a newer version wrote them; known: %s)",
                    stored_type[:64], ", ".join(_TYPES))
    return unknown


def _where(query: Query) -> sa.ColumnElement[bool]:
    """The WHERE of the profiles matching `query`.

    Without labels: service, type and window, one range of the (service, type, created_at) index.
    With labels, pprof profiles are found through their series: those of the service whose
    labels include the filter (`series_with`), then their profiles in the window, one range of
    the (series_id, created_at) index each, instead of every profile of the service in the
    window with a probe of its labels (a week of one service is thousands of rows, on as many
    heap pages). Every pprof profile has a series (put gives it one, migration 0002 gave the
    older rows theirs); traces have none and keep the probes. Without a type, both: as ids of
    two selects, since an OR of the two would be read off the created_at index, every service's.
    A window shorter than `PROBED_WINDOW` keeps the probes too: it holds fewer rows of the
    service than a label has series over a year (each one an index range to read, mostly cold).
    """
    short = epoch(query.end) - epoch(query.start) < PROBED_WINDOW
    if not query.labels or short or (query.type is not None and not query.type.is_pprof):
        return _probed(profiles, query)
    if query.type is not None:
        return _in_series(profiles, query)
    p = profiles.alias()
    traces = replace(query, type=ProfileType.TRACE)
    return profiles.c.id.in_(sa.union_all(sa.select(p.c.id).where(_in_series(p, query)),
                                          sa.select(p.c.id).where(_probed(p, traces))))


def _window(p: sa.FromClause, query: Query) -> list[sa.ColumnElement[bool]]:
    return [p.c.created_at >= epoch(query.start), p.c.created_at <= epoch(query.end)]


def _in_series(p: sa.FromClause, query: Query) -> sa.ColumnElement[bool]:
    return sa.and_(*(p.c.series_id.in_(ids) for ids in series_with(query.service, query.type, query.labels)),
                   *_window(p, query))


def _probed(p: sa.FromClause, query: Query) -> sa.ColumnElement[bool]:
    """Service, type and window, and one indexed subquery per label pair."""
    cond = [p.c.service == query.service, *_window(p, query)]
    if query.type is not None:
        cond.append(p.c.type == query.type.value)
    for lb in query.labels:
        # One probe of (key, value, profile_id) per profile the time range holds. OFFSET 0 keeps
        # PostgreSQL from turning this into a join driven by the label: it misjudges how many
        # profiles one pair has (an instance has 20,000 in a year) and then read them all to keep
        # the few of one week.
        pl = profile_labels.alias()
        cond.append(
            sa.select(sa.literal(1))
            .where(pl.c.profile_id == p.c.id, pl.c.key == lb.key, pl.c.value == lb.value)
            .offset(0)
            .exists()
        )
    return sa.and_(*cond)


def _keys_unique(labels: Labels) -> bool:
    keys = [lb.key for lb in labels]
    return len(set(keys)) == len(keys)


class _PutStatements:
    """The statements of `SqlMetaStore.put` in `dialect`'s SQL (`shared.adapters.sql_rows`)."""

    def __init__(self, dialect: sa.Dialect) -> None:
        self.profiles = RowInsert(dialect, profiles, ("id", "service", "type", "created_at", "received_at", "size",
                                                      "signature", "series_id", "totals"), returning="id")
        self.labels = RowInsert(dialect, profile_labels, ("profile_id", "position", "key", "value"))
        self.series = RowInsert(dialect, series, ("id", "service", "type", "signature", "labels"), returning="id")
        self.series_labels = RowInsert(dialect, series_labels,
                                       ("series_id", "position", "service", "type", "key", "value"))
        self.bump_hours = RowInsert(dialect, series_hours, ("series_id", "hour", "version"),
                                    update="version = series_hours.version + excluded.version")
        mark = placeholder(dialect)
        modulo = "%%" if mark == "%s" else "%"  # a literal % in a psycopg statement with parameters
        self._stamp = ("UPDATE profiles SET version = (SELECT series_hours.version FROM series_hours"
                       " WHERE series_hours.series_id = profiles.series_id"
                       f" AND series_hours.hour = profiles.created_at - profiles.created_at {modulo} {HOUR})"
                       " WHERE profiles.id IN ({})")
        self._mark = mark
        self._stamps: dict[int, str] = {}

    def stamp_versions(self, ids: int) -> str:
        """Set each of `ids` profiles' version to its (series, hour) counter's value."""
        text = self._stamps.get(ids)
        if text is None:
            text = self._stamps[ids] = self._stamp.format(", ".join([self._mark] * ids))
        return text
