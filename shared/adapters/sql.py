"""What the SQL adapters share: the schema (one SQLAlchemy `MetaData`, which the migrations
create), the engine set-up, migrating, and how database failures become the domain's errors.
SQLite for the embedded collector, PostgreSQL in production, the same statements on both."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Sequence, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from shared.adapters.settings import SqlTimeouts
from shared.errors import InsufficientStorage, Unavailable
from shared.model import Labels, ProfileType

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
    # Its (series, hour) counter after the put that stored it; None for traces and old rows.
    sa.Column("version", sa.BigInteger, nullable=True),
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

# A series' label pairs, one row per pair, in the order of `series.labels`: what a label filter
# finds series by. The series' service and type are repeated (they never change) so one index
# range holds the series of one service with one pair.
series_labels = sa.Table(
    "series_labels",
    metadata,
    sa.Column("series_id", sa.String(32), sa.ForeignKey("series.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("service", sa.String(255), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("value", sa.Text, nullable=False),
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
CHUNK = 500
T = TypeVar("T")


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path)}"


def create_engine(url: str, timeouts: SqlTimeouts | None = None) -> Engine:
    """An engine for `url`. On PostgreSQL, `timeouts` bound the connect, each statement on the
    server, and every wait for an answer on the client (none without). On SQLite, WAL mode and a
    busy timeout so readers never block the writer and concurrent writers wait instead of failing."""
    sqlite = url.startswith("sqlite")
    connect_args: dict[str, Any] = {}
    if timeouts is not None and not sqlite:
        connect_args["connect_timeout"] = max(2, round(timeouts.connect))
        if timeouts.statement > 0:
            connect_args["options"] = f"-c statement_timeout={round(timeouts.statement * 1000)}"
    engine = sa.create_engine(url, pool_pre_ping=not sqlite, connect_args=connect_args)
    if timeouts is not None and timeouts.reply > 0 and engine.dialect.name == "postgresql":
        from shared.adapters.sql_deadline import bound_replies

        bound_replies(engine, timeouts.reply)
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


# The advisory lock every migration of one PostgreSQL database takes (any constant; "profefe").
MIGRATION_LOCK = 0x70726F66656665


def migrate(url: str, timeouts: SqlTimeouts | None = None) -> None:
    """Bring the schema at `url` up to the newest migration (shared/migrations)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent.parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    engine = create_engine(url, timeouts)
    try:
        with unavailable_on_error(url), engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Two migrations at once (a Job and a replica starting, say) would both create the
                # tables; the second waits here and then finds nothing left to do.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()

windows = sa.Table(
    "windows",
    metadata,
    sa.Column("series_id", sa.String(32), primary_key=True),
    sa.Column("span", sa.Integer, primary_key=True),
    sa.Column("start", sa.BigInteger, primary_key=True),
    sa.Column("blob_key", sa.Text, nullable=True),
    sa.Column("built_from", sa.BigInteger, nullable=False),
    sa.Column("profiles", sa.BigInteger, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("built_at", sa.BigInteger, nullable=False),
)


def series_with(service: str, ptype: ProfileType | None, labels: Labels) -> list[sa.Select]:
    """Per pair of `labels`, the ids of the series of `service` (of `ptype`, or of any type) that
    have it: a series has them all when its id is in every one. Each is one range of
    series_labels' (service, key, value, type) index."""
    sl = series_labels
    typed = [sl.c.type == ptype.value] if ptype is not None else []
    return [sa.select(sl.c.series_id).where(sl.c.service == service, sl.c.key == lb.key, sl.c.value == lb.value,
                                            *typed)
            for lb in labels]


def series_labels_json(labels: Labels) -> str:
    """A series row's `labels`: JSON [[key, value], ...] in the order of `labels` (sorted by key)."""
    return json.dumps([[lb.key, lb.value] for lb in labels], ensure_ascii=False)


@lru_cache(maxsize=16384)
def series_labels_of(raw: str) -> Labels:
    """A series row's `labels` (`series_labels_json`) as `Labels`.

    Remembered: every find decodes the labels of each series it meets, a week of a region a
    hundred, and the planner finds them again among its own series; `Labels` is immutable."""
    return Labels.of((k, v) for k, v in json.loads(raw))


def totals_json(totals: tuple[int, ...]) -> str | None:
    """A profile row's `totals`: JSON [n, ...], or None when there are none."""
    return json.dumps(list(totals)) if totals else None


def totals_of(raw: str | None) -> tuple[int, ...]:
    """A profile row's `totals` (`totals_json`) as a tuple. A list of integers is split, not
    parsed as JSON: a find reads one per profile, and `json.loads` was a third of their cost."""
    return tuple(map(int, raw[1:-1].split(","))) if raw and len(raw) > 2 else ()


class unavailable_on_error:
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
        if isinstance(exc, sa.exc.OperationalError) and _disk_full(exc):
            raise InsufficientStorage(f"metadata database {self.where}: {exc.orig}") from exc
        if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)) or (
            isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated
        ):
            raise Unavailable(f"metadata database {self.where} unavailable: {exc.orig}") from exc
        return False


_DISK_FULL = "53100"  # PostgreSQL's SQLSTATE for "disk full"


def _disk_full(exc: sa.exc.DBAPIError) -> bool:
    # SQLite says SQLITE_FULL as "database or disk is full".
    return getattr(exc.orig, "sqlstate", None) == _DISK_FULL or "disk is full" in str(exc.orig)


_UNDEFINED_TABLE = "42P01"  # PostgreSQL's SQLSTATE for "relation does not exist"


def _schema_missing(exc: BaseException | None) -> bool:
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if getattr(exc.orig, "sqlstate", None) == _UNDEFINED_TABLE:
        return True
    return isinstance(exc, sa.exc.OperationalError) and "no such table" in str(exc.orig)


def upsert(conn: sa.Connection | Engine) -> Any:
    """The dialect's INSERT, whose ON CONFLICT clause the caller adds."""
    from sqlalchemy.dialects import postgresql, sqlite

    if conn.dialect.name == "postgresql":
        return postgresql.insert
    if conn.dialect.name == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"unsupported database dialect {conn.dialect.name!r}")


def chunks(items: Sequence[T] | Iterable[T], size: int) -> Iterator[list[T]]:
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i:i + size]
