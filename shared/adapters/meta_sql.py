"""Profile metadata in SQL (SQLAlchemy Core): SQLite for the embedded collector, PostgreSQL in
production, the same statements on both.

`created_at` is stored as integer epoch seconds, so the inclusive window compares exactly at
second precision on every engine. Labels live in a child table, one row per pair, indexed on
(key, value) so the AND-of-pairs filter is one indexed subquery per pair.
"""
from __future__ import annotations

import json
from dataclasses import replace
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Sequence, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from shared.errors import Unavailable
from shared.model import Label, Labels, ProfileMeta, ProfileType, Query
from shared.windows import HOUR, Series, epoch, floor_to, from_epoch

metadata = sa.MetaData()

profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column("id", sa.String(20), primary_key=True),
    sa.Column("service", sa.String(255), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("received_at", sa.BigInteger, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
    sa.Column("series_id", sa.String(32), nullable=True),  # None for traces: they are never merged
    sa.Column("totals", sa.Text, nullable=True),  # JSON [n, ...]: pprof.totals; None for traces and old rows
)

profile_labels = sa.Table(
    "profile_labels",
    metadata,
    sa.Column("profile_id", sa.String(20), sa.ForeignKey("profiles.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("value", sa.Text, nullable=False),
)

# A series and its per-hour counters (shared/windows.py) are written with the raw rows, in the same
# transaction, so a window built before a late profile arrived is seen to be stale at once.
series = sa.Table(
    "series",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("service", sa.String(255), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
    sa.Column("labels", sa.Text, nullable=False),
)

series_hours = sa.Table(
    "series_hours",
    metadata,
    sa.Column("series_id", sa.String(32), primary_key=True),
    sa.Column("hour", sa.BigInteger, primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("pruned", sa.Boolean, nullable=False, server_default=sa.false()),
)

# Enough below SQLite's and PostgreSQL's bound-parameter limits for any row shape here.
_CHUNK = 500
T = TypeVar("T")


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path)}"


def create_engine(url: str) -> Engine:
    """An engine for `url`; on SQLite, WAL mode and a busy timeout so readers never block the writer
    and concurrent writers wait instead of failing."""
    engine = sa.create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every test
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

    return engine


def migrate(url: str) -> None:
    """Bring the schema at `url` up to the newest migration (shared/migrations)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent.parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    engine = create_engine(url)
    try:
        with _unavailable_on_error(url), engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()


class SqlMetaStore:
    """`MetaStore` over SQLAlchemy Core; the schema comes from `migrate(url)`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        # Built once: SQLAlchemy then reuses their compiled form on every put.
        insert = _insert_ignore(self.engine)
        self._insert_profiles = insert(profiles, ("id",)).returning(profiles.c.id)
        self._insert_labels = insert(profile_labels, ("profile_id", "position"))
        self._insert_series = insert(series, ("id",))
        bump = _upsert(self.engine)(series_hours)
        self._bump_hour = bump.on_conflict_do_update(
            index_elements=["series_id", "hour"],
            set_={"version": series_hours.c.version + bump.excluded.version},
        )

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
            for chunk in _chunks(rows, _CHUNK // 8):
                fresh_ids.update(r[0] for r in conn.execute(self._insert_profiles, chunk))
            if not fresh_ids:
                return
            fresh = [m for m in metas if m.id in fresh_ids]
            label_rows = [
                {"profile_id": m.id, "position": i, "key": lb.key, "value": lb.value}
                for m in fresh
                for i, lb in enumerate(m.labels)
            ]
            for chunk in _chunks(label_rows, _CHUNK // 4):
                conn.execute(self._insert_labels, chunk)
            self._bump_hours(conn, [(in_series[m.id], epoch(m.created_at)) for m in fresh if m.id in in_series])

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
        for chunk in _chunks(series_rows, _CHUNK // 8):
            conn.execute(self._insert_series, chunk)
        counts = Counter((s.id, floor_to(at, HOUR)) for s, at in placed)
        hour_rows = [{"series_id": sid, "hour": hour, "version": n} for (sid, hour), n in sorted(counts.items())]
        for hours in _chunks(hour_rows, _CHUNK // 4):
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

    def types(self, query: Query) -> list[str]:
        stmt = sa.select(profiles.c.type).distinct().where(*_conditions(replace(query, type=None))).order_by(profiles.c.type)
        with self._guard(), self.engine.connect() as conn:
            return [r[0] for r in conn.execute(stmt)]

    def label_pairs(self, query: Query, limit: int) -> list[tuple[str, str]]:
        pl = profile_labels
        stmt = (
            sa.select(pl.c.key, pl.c.value).distinct()
            .where(pl.c.profile_id.in_(sa.select(profiles.c.id).where(*_conditions(query))))
            .order_by(pl.c.key, pl.c.value).limit(limit)
        )
        with self._guard(), self.engine.connect() as conn:
            return [(k, v) for k, v in conn.execute(stmt)]

    def get_many(self, ids: Sequence[str]) -> list[ProfileMeta]:
        unique = list(dict.fromkeys(ids))
        if not unique:
            return []
        with self._guard(), self.engine.connect() as conn:
            rows: list[sa.Row[Any]] = []
            for chunk in _chunks(unique, _CHUNK):
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
        for chunk in _chunks([r.id for r in rows], _CHUNK):
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
        return _unavailable_on_error(self.url)


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
        cond.append(
            p.c.id.in_(
                sa.select(profile_labels.c.profile_id).where(
                    profile_labels.c.key == lb.key, profile_labels.c.value == lb.value
                )
            )
        )
    return cond


class _unavailable_on_error:
    """Turn "the database does not answer" into `Unavailable`; other errors stay what they are."""

    def __init__(self, url: str) -> None:
        self.where = sa.engine.make_url(url).render_as_string(hide_password=True)

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> Literal[False]:
        if _schema_missing(exc):
            # A daemon that started before `profefe migrate` finished: wait for it, do not
            # dead-letter what it reads or answer 500.
            raise Unavailable(f"metadata database {self.where} has no profefe schema yet: "
                              f"run `profefe migrate` ({getattr(exc, 'orig', exc)})") from exc
        if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)) or (
            isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated
        ):
            raise Unavailable(f"metadata database {self.where} unavailable: {exc.orig}") from exc
        return False


_UNDEFINED_TABLE = "42P01"  # PostgreSQL's SQLSTATE for "relation does not exist"


def _schema_missing(exc: BaseException | None) -> bool:
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if getattr(exc.orig, "sqlstate", None) == _UNDEFINED_TABLE:
        return True
    return isinstance(exc, sa.exc.OperationalError) and "no such table" in str(exc.orig)


def _insert_ignore(conn: sa.Connection | Engine):
    """INSERT ... ON CONFLICT DO NOTHING in the connection's dialect: ids make writes idempotent."""
    insert = _upsert(conn)

    def build(table: sa.Table, keys: tuple[str, ...]):
        return insert(table).on_conflict_do_nothing(index_elements=list(keys))

    return build


def _upsert(conn: sa.Connection | Engine) -> Any:
    """The dialect's INSERT, whose ON CONFLICT clause the caller adds."""
    from sqlalchemy.dialects import postgresql, sqlite

    if conn.dialect.name == "postgresql":
        return postgresql.insert
    if conn.dialect.name == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"unsupported database dialect {conn.dialect.name!r}")


def _chunks(items: Sequence[T] | Iterable[T], size: int) -> Iterator[list[T]]:
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i:i + size]
