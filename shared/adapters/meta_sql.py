"""Profile metadata in SQL (SQLAlchemy Core): SQLite for the embedded collector, PostgreSQL in
production, the same statements on both.

`created_at` is stored as integer epoch seconds, so the inclusive window compares exactly at
second precision on every engine. Labels live in a child table, one row per pair, indexed on
(key, value, profile_id) so the AND-of-pairs filter is one index probe per pair and profile.
"""
from __future__ import annotations

import json
from dataclasses import replace
from collections import Counter, defaultdict
from typing import Any, Sequence

import sqlalchemy as sa

from shared.adapters.settings import SqlTimeouts
from shared.adapters.sql import (
    CHUNK,
    chunks,
    create_engine,
    insert_ignore,
    migrate,
    profile_labels,
    profiles,
    series,
    series_hours,
    sqlite_url,
    unavailable_on_error,
    upsert,
)
from shared.model import Label, Labels, ProfileMeta, ProfileType, Query
from shared.windows import HOUR, Series, epoch, floor_to, from_epoch

__all__ = ["SqlMetaStore", "migrate", "sqlite_url"]

class SqlMetaStore:
    """`MetaStore` over SQLAlchemy Core; the schema comes from `migrate(url)`."""

    def __init__(self, url: str, timeouts: SqlTimeouts | None = None) -> None:
        self.url = url
        self.engine = create_engine(url, timeouts)
        # Built once: SQLAlchemy then reuses their compiled form on every put.
        insert = insert_ignore(self.engine)
        self._insert_profiles = insert(profiles, ("id",)).returning(profiles.c.id)
        self._insert_labels = insert(profile_labels, ("profile_id", "position"))
        self._insert_series = insert(series, ("id",))
        bump = upsert(self.engine)(series_hours)
        self._bump_hour = bump.on_conflict_do_update(
            index_elements=["series_id", "hour"],
            set_={"version": series_hours.c.version + bump.excluded.version},
        )
        sh, p = series_hours, profiles
        counter = sa.select(sh.c.version).where(sh.c.series_id == p.c.series_id,
                                                sh.c.hour == p.c.created_at - p.c.created_at % HOUR)
        self._stamp_versions = sa.update(p).where(p.c.id.in_(sa.bindparam("ids", expanding=True))).values(
            version=counter.scalar_subquery())

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
        rows = [
            {
                "id": m.id,
                "service": m.service,
                "type": m.type.value,
                "created_at": epoch(m.created_at),
                "received_at": epoch(m.received_at),
                "size": m.size,
                "signature": m.signature,
                "series_id": in_series[m.id].id if m.id in in_series else None,
                "totals": json.dumps(list(m.totals)) if m.totals else None,
            }
            for m in metas
        ]
        with self._guard(), self.engine.begin() as conn:
            # ON CONFLICT DO NOTHING ... RETURNING id names the rows really inserted: an id stored
            # before (a redelivery) gets no labels and bumps no counter a second time.
            fresh_ids: set[str] = set()
            for chunk in chunks(rows, CHUNK // 8):
                fresh_ids.update(r[0] for r in conn.execute(self._insert_profiles, chunk))
            if not fresh_ids:
                return
            fresh = [m for m in metas if m.id in fresh_ids]
            label_rows = [
                {"profile_id": m.id, "position": i, "key": lb.key, "value": lb.value}
                for m in fresh
                for i, lb in enumerate(m.labels)
            ]
            for chunk in chunks(label_rows, CHUNK // 4):
                conn.execute(self._insert_labels, chunk)
            self._bump_hours(conn, [(in_series[m.id], epoch(m.created_at)) for m in fresh if m.id in in_series])
            # Each new profile takes its counter's value after the bump (the counter rows are
            # still locked here): the compactor tells by it what a window already holds.
            for ids in chunks([m.id for m in fresh if m.id in in_series], CHUNK):
                conn.execute(self._stamp_versions, {"ids": ids})

    def _bump_hours(self, conn: sa.Connection, placed: list[tuple[Series, int]]) -> None:
        """Record each new profile's series and add one to its (series, hour) counter.

        Rows are upserted in key order so two concurrent puts lock them in the same order.
        """
        if not placed:
            return
        known = {s.id: s for s, _ in placed}
        series_rows = [
            {"id": s.id, "service": s.service, "type": s.type.value, "signature": s.signature,
             "labels": json.dumps([[lb.key, lb.value] for lb in s.labels], ensure_ascii=False)}
            for s in sorted(known.values(), key=lambda s: s.id)
        ]
        for chunk in chunks(series_rows, CHUNK // 8):
            conn.execute(self._insert_series, chunk)
        counts = Counter((s.id, floor_to(at, HOUR)) for s, at in placed)
        hour_rows = [{"series_id": sid, "hour": hour, "version": n} for (sid, hour), n in sorted(counts.items())]
        for hours in chunks(hour_rows, CHUNK // 4):
            conn.execute(self._bump_hour, hours)

    def find(self, query: Query) -> list[ProfileMeta]:
        p = profiles
        stmt = sa.select(p).where(*_conditions(query))
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
        stmt = sa.select(p.c.created_at, p.c.signature, p.c.totals).where(*_conditions(query)).order_by(p.c.created_at)
        with self._guard(), self.engine.connect() as conn:
            return [(at, sig, tuple(json.loads(raw)) if raw else None) for at, sig, raw in conn.execute(stmt)]

    def signatures(self, query: Query) -> list[tuple[str, str]]:
        p = profiles
        stmt = (sa.select(p.c.type, p.c.signature).distinct().where(*_conditions(replace(query, type=None)))
                .order_by(p.c.type, p.c.signature))
        with self._guard(), self.engine.connect() as conn:
            return [(t, sig) for t, sig in conn.execute(stmt)]

    def label_pairs(self, query: Query, limit: int, key: str | None = None) -> list[tuple[str, str]]:
        pl = profile_labels
        stmt = (
            sa.select(pl.c.key, pl.c.value).distinct()
            .where(pl.c.profile_id.in_(sa.select(profiles.c.id).where(*_conditions(query))))
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
            rows: list[sa.Row[Any]] = []
            for chunk in chunks(unique, CHUNK):
                rows.extend(conn.execute(sa.select(profiles).where(profiles.c.id.in_(chunk))).all())
            return self._with_labels(conn, rows)

    def services(self) -> list[str]:
        stmt = sa.select(profiles.c.service).distinct().order_by(profiles.c.service)
        with self._guard(), self.engine.connect() as conn:
            return [r[0] for r in conn.execute(stmt)]

    def ping(self) -> None:
        with self._guard(), self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def _with_labels(self, conn: sa.Connection, rows: Sequence[sa.Row]) -> list[ProfileMeta]:
        labels: dict[str, list[Label]] = defaultdict(list)
        pl = profile_labels
        for chunk in chunks([r.id for r in rows], CHUNK):
            stmt = (
                sa.select(pl.c.profile_id, pl.c.key, pl.c.value)
                .where(pl.c.profile_id.in_(chunk))
                .order_by(pl.c.profile_id, pl.c.position)
            )
            for pid, key, value in conn.execute(stmt):
                labels[pid].append(Label(key, value))
        return [
            ProfileMeta(
                id=r.id,
                service=r.service,
                type=ProfileType(r.type),
                labels=Labels(tuple(labels.get(r.id, ()))),
                created_at=from_epoch(r.created_at),
                received_at=from_epoch(r.received_at),
                size=r.size,
                signature=r.signature,
                totals=tuple(json.loads(r.totals)) if r.totals else (),
            )
            for r in rows
        ]

    def _guard(self):
        return unavailable_on_error(self.url)


def _conditions(query: Query) -> list[sa.ColumnElement[bool]]:
    """The WHERE of a find: service, window, type, and one indexed subquery per label pair."""
    p = profiles
    cond = [
        p.c.service == query.service,
        p.c.created_at >= epoch(query.start),
        p.c.created_at <= epoch(query.end),
    ]
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
    return cond


