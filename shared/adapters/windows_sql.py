"""Pre-merged windows in SQL, beside the profile metadata (same database, same migrations).

The counters they are checked against (`series_hours`) are written by `SqlMetaStore.put`; this
module reads them, claims work on them and never bumps them: neither building a window nor
retention counts as a change to an hour's data.

Claims: on PostgreSQL a claim is a row lock taken with `FOR UPDATE SKIP LOCKED` (the hour's
counter row for an hourly window, the series row for a daily one) and held until the new window
row is written in the same transaction, so replicas never build the same window at once. SQLite
serves one process (`profefe serve`), whose single compactor needs no lock; its claims hold no
transaction, so ingest is never blocked behind a merge.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import sqlalchemy as sa

from shared.adapters.settings import SqlTimeouts
from shared.adapters.sql import (
    CHUNK,
    chunks,
    create_engine,
    profiles,
    series,
    series_hours,
    series_labels_of,
    series_with,
    unavailable_on_error,
    upsert,
    windows,
)
from shared.model import Labels, ProfileType
from shared.windows import DAY, HOUR, HourState, RawProfile, Series, Window

# The statements a compactor runs once or twice per window, built once with bound parameters:
# building them per call (and their cache keys) cost more CPU than running them on SQLite.
_WINDOW = sa.select(windows).where(windows.c.series_id == sa.bindparam("sid"), windows.c.span == sa.bindparam("span"),
                                   windows.c.start == sa.bindparam("start"))
_HOUR = sa.select(series_hours).where(series_hours.c.series_id == sa.bindparam("sid"),
                                      series_hours.c.hour == sa.bindparam("hour"))
_RAW_IN = (
    sa.select(profiles.c.id, profiles.c.size, profiles.c.version)
    .where(profiles.c.series_id == sa.bindparam("sid"), profiles.c.created_at >= sa.bindparam("lo"),
           profiles.c.created_at <= sa.bindparam("hi"))
    .order_by(profiles.c.created_at, profiles.c.id)
)
_WINDOW_COLUMNS = tuple(windows.c.keys())


class SqlWindowStore:
    """`WindowStore` over SQLAlchemy Core; the schema comes from `sql.migrate(url)`."""

    def __init__(self, url: str, timeouts: SqlTimeouts | None = None) -> None:
        self.url = url
        self.engine = create_engine(url, timeouts)
        self._unavailable = unavailable_on_error(url)  # stateless: one for every call
        self.locking = self.engine.dialect.name == "postgresql"
        put = upsert(self.engine)(windows)
        self._put_window = put.on_conflict_do_update(
            index_elements=["series_id", "span", "start"],
            set_={c.name: put.excluded[c.name] for c in windows.c if not c.primary_key},
        )

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        with self._guard(), self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    # Reading, for the query planner -----------------------------------------------------------

    def series_of(self, service: str, ptype: ProfileType, labels: Labels, *,
                  active_in: tuple[int, int] | None = None) -> list[Series]:
        stmt = sa.select(series).where(series.c.service == service, series.c.type == ptype.value,
                                       *(series.c.id.in_(ids) for ids in series_with(service, ptype, labels)))
        if active_in is not None:
            # A year of deploys leaves a service with a thousand series, a week touches a few dozen:
            # one probe of the counters' primary key each keeps the rest out of Python.
            sh = series_hours
            stmt = stmt.where(sa.exists().where(sh.c.series_id == series.c.id, sh.c.hour >= active_in[0],
                                                sh.c.hour <= active_in[1]))
        with self._guard(), self.engine.connect() as conn:
            return [_series(r) for r in conn.execute(stmt).all()]

    def hour_states(self, series_ids: Sequence[str], start: int, end: int) -> list[HourState]:
        sh = series_hours
        out: list[HourState] = []
        with self._guard(), self.engine.connect() as conn:
            for chunk in chunks(series_ids, CHUNK):
                stmt = sa.select(sh).where(sh.c.series_id.in_(chunk), sh.c.hour >= start, sh.c.hour <= end)
                out.extend(map(_state, conn.execute(stmt).all()))
        return out

    def windows(self, series_ids: Sequence[str], span: int, start: int, end: int) -> list[Window]:
        w = windows
        out: list[Window] = []
        with self._guard(), self.engine.connect() as conn:
            for chunk in chunks(series_ids, CHUNK):
                stmt = sa.select(w).where(
                    w.c.series_id.in_(chunk), w.c.span == span, w.c.start >= start, w.c.start <= end
                )
                out.extend(map(_window, conn.execute(stmt).all()))
        return out

    # Finding work, for the compactor ----------------------------------------------------------

    def pending_hours(self, closed_before: int, not_before: int, limit: int) -> list[HourState]:
        """Hours ending at or before `closed_before`, starting at or after `not_before`, whose
        hourly window is missing or stale; oldest first."""
        sh, w = series_hours, windows
        stmt = (
            sa.select(sh)
            .select_from(sh.outerjoin(w, sa.and_(w.c.series_id == sh.c.series_id, w.c.span == HOUR,
                                                  w.c.start == sh.c.hour)))
            .where(sh.c.hour + HOUR <= closed_before, sh.c.hour >= not_before,
                   sa.or_(w.c.built_from.is_(None), w.c.built_from != sh.c.version))
            .order_by(sh.c.hour, sh.c.series_id)
            .limit(limit)
        )
        with self._guard(), self.engine.connect() as conn:
            return [_state(r) for r in conn.execute(stmt)]

    def pending_days(self, closed_before: int, not_before: int, limit: int) -> list[tuple[str, int]]:
        """(series, day) whose every hour with data has a clean hourly window, and whose daily
        window is missing or stale; oldest first."""
        sh, w = series_hours, windows
        day = (sh.c.hour - sh.c.hour % DAY).label("day")
        dirty = sa.func.sum(sa.case((w.c.built_from == sh.c.version, 0), else_=1))
        groups = (
            sa.select(sh.c.series_id, day, sa.func.sum(sh.c.version).label("total"))
            .select_from(sh.outerjoin(w, sa.and_(w.c.series_id == sh.c.series_id, w.c.span == HOUR,
                                                  w.c.start == sh.c.hour)))
            .where(sh.c.hour >= not_before, sh.c.hour - sh.c.hour % DAY + DAY <= closed_before)
            .group_by(sh.c.series_id, day)
            .having(dirty == 0)
            .subquery()
        )
        dw = windows.alias("dw")
        stmt = (
            sa.select(groups.c.series_id, groups.c.day)
            .select_from(groups.outerjoin(dw, sa.and_(dw.c.series_id == groups.c.series_id, dw.c.span == DAY,
                                                       dw.c.start == groups.c.day)))
            .where(sa.or_(dw.c.built_from.is_(None), dw.c.built_from != groups.c.total))
            .order_by(groups.c.day, groups.c.series_id)
            .limit(limit)
        )
        with self._guard(), self.engine.connect() as conn:
            return [(r.series_id, int(r.day)) for r in conn.execute(stmt)]

    def series_by_id(self, series_id: str) -> Series | None:
        with self._guard(), self.engine.connect() as conn:
            row = conn.execute(sa.select(series).where(series.c.id == series_id)).first()
        return _series(row) if row is not None else None

    def raw_in(self, series_id: str, start: int, end: int) -> list[RawProfile]:
        """The series' raw profiles in [start, end], ascending by time then id."""
        with self._guard(), self.engine.connect() as conn:
            return [RawProfile(r.id, int(r.size), None if r.version is None else int(r.version))
                    for r in conn.execute(_RAW_IN, {"sid": series_id, "lo": start, "hi": end})]

    # Claiming and writing ---------------------------------------------------------------------

    @contextlib.contextmanager
    def claim_hour(self, series_id: str, hour: int) -> Iterator[SqlHourClaim | None]:
        """The hour's counter and current window, held for this caller until the block ends;
        None when another compactor holds it (or the hour has no counter)."""
        with self._claiming(_HOUR, {"sid": series_id, "hour": hour}) as (conn, row):
            if row is None:
                yield None
                return
            current = self._window(conn, series_id, HOUR, hour)
            yield SqlHourClaim(self, self._held(conn), _state(row), current)

    @contextlib.contextmanager
    def claim_day(self, series_id: str, day: int) -> Iterator[SqlDayClaim | None]:
        """The day's hourly windows (clean ones only), the sum of its counters and its current
        daily window; None when another compactor holds the series."""
        stmt = sa.select(series.c.id).where(series.c.id == series_id)
        with self._claiming(stmt, {}) as (conn, row):
            if row is None:
                yield None
                return
            sh, w = series_hours, windows
            states = [_state(r) for r in conn.execute(
                sa.select(sh).where(sh.c.series_id == series_id, sh.c.hour >= day, sh.c.hour < day + DAY))]
            hourly = {x.start: x for x in (_window(r) for r in conn.execute(
                sa.select(w).where(w.c.series_id == series_id, w.c.span == HOUR,
                                   w.c.start >= day, w.c.start < day + DAY)))}
            clean = all(s.hour in hourly and hourly[s.hour].built_from == s.version for s in states)
            current = self._window(conn, series_id, DAY, day)
            hours = [hourly[s.hour] for s in sorted(states, key=lambda s: s.hour)] if clean else []
            yield SqlDayClaim(self, self._held(conn), sum(s.version for s in states), clean, hours, current)

    @contextlib.contextmanager
    def _claiming(self, stmt, params: dict[str, Any]) -> Iterator[tuple[sa.Connection, sa.Row | None]]:
        with self._guard(), self.engine.connect() as conn:
            if self.locking:
                with conn.begin():
                    yield conn, conn.execute(stmt.with_for_update(skip_locked=True), params).first()
            else:
                yield conn, conn.execute(stmt, params).first()

    def _held(self, conn: sa.Connection) -> sa.Connection | None:
        """The connection whose transaction holds the claim; None on SQLite, where the reads are
        done and their snapshot released, so `save` writes in a short transaction of its own."""
        if self.locking:
            return conn
        conn.rollback()
        return None

    def _save(self, conn: sa.Connection | None, window: Window, drop_raw: Sequence[str]) -> str | None:
        """Switch the window row to `window` (one transaction); the blob key it replaced."""
        if conn is None:
            with self._guard(), self.engine.begin() as own:
                return self._write(own, window, drop_raw)
        with self._guard():
            return self._write(conn, window, drop_raw)

    def _write(self, conn: sa.Connection, window: Window, drop_raw: Sequence[str]) -> str | None:
        old = self._window(conn, window.series_id, window.span, window.start)
        conn.execute(self._put_window, {c: getattr(window, c) for c in _WINDOW_COLUMNS})
        for chunk in chunks(drop_raw, CHUNK):
            conn.execute(sa.delete(profiles).where(profiles.c.id.in_(chunk)))
        return old.blob_key if old is not None and old.blob_key != window.blob_key else None

    @staticmethod
    def _window(conn: sa.Connection, series_id: str, span: int, start: int) -> Window | None:
        row = conn.execute(_WINDOW, {"sid": series_id, "span": span, "start": start}).first()
        return _window(row) if row is not None else None

    # Retention --------------------------------------------------------------------------------

    def prune_raw(self, before: int, windows_before: int, *, service: str | None = None,
                  other_than: Sequence[str] = (), limit: int = 1000) -> list[str]:
        """Delete the raw rows of whole hours whose window is clean (or that lie before
        `windows_before`, where no window is kept), created before `before` (hour-aligned), of
        `service` or of every service but `other_than`: the oldest day of such hours per call;
        and up to `limit` traces created before `before`. Marks those hours pruned, without
        touching their counters. Returns the deleted ids (none: nothing left to do); their blobs
        are the caller's to delete, after this returns.

        An hour is pruned whole or not at all, so a rebuild after a late profile (old window +
        the raw rows left) never counts a profile twice. Rows are deleted by the ids read in the
        same statement that saw their hour clean: a profile landing meanwhile stays, for the
        rebuild. On PostgreSQL the counters of the day are locked first, so no such profile can
        commit between that read and the delete."""
        p, sh, w = profiles, series_hours, windows
        hour = p.c.created_at - p.c.created_at % HOUR
        scope = [p.c.created_at < before]
        if service is not None:
            scope.append(p.c.service == service)
        elif other_than:
            scope.append(p.c.service.not_in(list(other_than)))
        joined = p.join(sh, sa.and_(sh.c.series_id == p.c.series_id, sh.c.hour == hour)).outerjoin(
            w, sa.and_(w.c.series_id == p.c.series_id, w.c.span == HOUR, w.c.start == hour))
        clean = sa.or_(w.c.built_from == sh.c.version, hour < windows_before)
        with self._guard(), self.engine.begin() as conn:
            rows: list[Any] = []
            # ORDER BY ... LIMIT 1 rather than min(): over a join, only this form walks the
            # created_at index from the oldest row instead of reading every row before `before`.
            oldest = conn.execute(sa.select(p.c.created_at).select_from(joined).where(*scope, clean)
                                  .order_by(p.c.created_at).limit(1)).scalar()
            if oldest is not None:
                lo = int(oldest) - int(oldest) % HOUR
                hi = min(before, lo + DAY)
                if self.locking:
                    self._lock_hours(conn, lo, hi, service, other_than)
                rows = list(conn.execute(
                    sa.select(p.c.id, p.c.series_id, hour.label("hour")).select_from(joined)
                    .where(*scope, clean, p.c.created_at >= lo, p.c.created_at < hi)).all())
            traces = conn.execute(sa.select(p.c.id).where(*scope, p.c.series_id.is_(None)).limit(limit)).all()
            ids = [r.id for r in rows] + [r.id for r in traces]
            for chunk in chunks(ids, CHUNK):
                conn.execute(sa.delete(p).where(p.c.id.in_(chunk)))
            marks = [{"sid": sid, "h": h} for sid, h in sorted({(r.series_id, int(r.hour)) for r in rows})]
            if marks:  # one executemany: a day of a fleet is tens of thousands of counters
                conn.execute(sa.update(sh).where(sh.c.series_id == sa.bindparam("sid"), sh.c.hour == sa.bindparam("h"))
                             .values(pruned=True), marks)
        return ids

    @staticmethod
    def _lock_hours(conn: sa.Connection, lo: int, hi: int, service: str | None, other_than: Sequence[str]) -> None:
        """Lock the counters of [lo, hi) in key order, the order `MetaStore.put` bumps them in."""
        sh = series_hours
        stmt = (
            sa.select(sh.c.series_id, sh.c.hour)
            .select_from(sh.join(series, series.c.id == sh.c.series_id))
            .where(sh.c.hour >= lo, sh.c.hour < hi)
            .order_by(sh.c.series_id, sh.c.hour)
            .with_for_update(of=sh)
        )
        if service is not None:
            stmt = stmt.where(series.c.service == service)
        elif other_than:
            stmt = stmt.where(series.c.service.not_in(list(other_than)))
        conn.execute(stmt).all()

    def drop_windows(self, before: int, limit: int = 1000) -> list[str]:
        """Delete up to `limit` windows ending before `before`, and the counters of hours before it
        that hold no raw profile any more. Returns the blob keys to delete."""
        w, sh, p = windows, series_hours, profiles
        with self._guard(), self.engine.begin() as conn:
            # The bare `start <=` bound lets the start index find the rows; `start + span` alone
            # would read the table whole on every pass.
            rows = conn.execute(
                sa.select(w.c.series_id, w.c.span, w.c.start, w.c.blob_key)
                .where(w.c.start <= before - HOUR, w.c.start + w.c.span <= before).limit(limit)).all()
            for r in rows:
                conn.execute(sa.delete(w).where(w.c.series_id == r.series_id, w.c.span == r.span,
                                                w.c.start == r.start))
            left = sa.exists().where(p.c.series_id == sh.c.series_id, p.c.created_at >= sh.c.hour,
                                     p.c.created_at < sh.c.hour + HOUR)
            # Only retention empties an hour, and it marks the hour pruned: the partial index on
            # pruned hours then skips the counters of hours whose raw profiles are still kept.
            conn.execute(sa.delete(sh).where(sh.c.pruned, sh.c.hour <= before - HOUR, ~left))
        return [r.blob_key for r in rows if r.blob_key]

    def referenced(self, keys: Sequence[str]) -> set[str]:
        """The keys among `keys` that a window row points to."""
        found: set[str] = set()
        with self._guard(), self.engine.connect() as conn:
            for chunk in chunks(list(dict.fromkeys(keys)), CHUNK):
                found.update(conn.execute(sa.select(windows.c.blob_key).where(windows.c.blob_key.in_(chunk))).scalars())
        return found

    def _guard(self) -> unavailable_on_error:
        return self._unavailable


class SqlHourClaim:
    """`HourClaim` on the transaction that holds the lock."""

    def __init__(self, store: SqlWindowStore, conn, state: HourState, window: Window | None) -> None:
        self._store, self._conn = store, conn
        self.state = state
        self.window = window
        self.replaced: str | None = None

    def save(self, window: Window, drop_raw: Sequence[str] = ()) -> None:
        """Switch to `window` and delete the `drop_raw` rows in one transaction; the replaced blob
        key is left in `replaced` for the caller to delete once the claim is over."""
        self.replaced = self._store._save(self._conn, window, drop_raw)


class SqlDayClaim:
    """`DayClaim` on the transaction that holds the lock."""

    def __init__(self, store: SqlWindowStore, conn, built_from: int, clean: bool,
                 hours: list[Window], window: Window | None) -> None:
        self._store, self._conn = store, conn
        self.built_from = built_from
        self.clean = clean
        self.hours = hours
        self.window = window
        self.replaced: str | None = None

    def save(self, window: Window) -> None:
        self.replaced = self._store._save(self._conn, window, ())


# Rows of the whole tables, unpacked in their columns' order: a plan of a region's week reads
# thousands of counters and windows, and attribute lookups on each row were a good part of it.
def _series(r: sa.Row) -> Series:
    sid, service, ptype, signature, labels = r
    return Series(sid, service, ProfileType(ptype), series_labels_of(labels), signature)


def _state(r: sa.Row) -> HourState:
    sid, hour, version, pruned = r
    return HourState(sid, hour, version, bool(pruned))


def _window(r: sa.Row) -> Window:
    sid, span, start, blob_key, built_from, n, size, built_at = r
    return Window(sid, start, span, blob_key, built_from, n, size, built_at)
