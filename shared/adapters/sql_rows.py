"""The metadata put's statements, run on the DBAPI cursor of a SQLAlchemy connection.

A put of a batch of uploads runs five statements. Through SQLAlchemy's execution (the compiled
cache, parameter processing, an execution context and a result per statement) they cost about
as much again as SQLite takes to run them, on the thread that stores every upload of the
embedded collector. Here each is rendered once per row count from the schema's `Table`s, in the
driver's placeholder style, inside the connection's transaction; a driver error is raised as
SQLAlchemy raises it, so the callers' error mapping is unchanged.
"""
from __future__ import annotations

from contextlib import suppress
from typing import Any, Sequence

import sqlalchemy as sa

__all__ = ["RowInsert", "execute", "placeholder"]


def placeholder(dialect: sa.Dialect) -> str:
    """The driver's positional placeholder: `?` for sqlite3, `%s` for psycopg."""
    if dialect.paramstyle == "qmark":
        return "?"
    if dialect.paramstyle in ("format", "pyformat"):
        return "%s"
    raise RuntimeError(f"unsupported parameter style {dialect.paramstyle!r} ({dialect.name})")


def execute(conn: sa.Connection, sql: str, params: Sequence[Any]) -> Sequence[Any]:
    """Run `sql` on `conn`'s DBAPI connection, in its transaction; the rows it returns, if any."""
    dialect = conn.dialect
    dbapi_conn = conn.connection
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description is not None else []
    except dialect.loaded_dbapi.Error as exc:
        # On a lost connection the transaction's rollback fails too, and the pool drops it.
        raise sa.exc.DBAPIError.instance(sql, params, exc, dialect.loaded_dbapi.Error, dialect=dialect,
                                         connection_invalidated=dialect.is_disconnect(exc, dbapi_conn, cursor)) from exc
    finally:
        with suppress(Exception):  # a lost connection's cursor may refuse to close; the error above stands
            cursor.close()


class RowInsert:
    """`INSERT INTO table (columns) VALUES (...), ... ON CONFLICT (its primary key) DO NOTHING` (or
    `DO UPDATE SET update`) `[RETURNING returning]`, for any number of rows, each a tuple in the
    order of `columns`."""

    def __init__(self, dialect: sa.Dialect, table: sa.Table, columns: Sequence[str], *,
                 update: str | None = None, returning: str | None = None) -> None:
        quote = dialect.identifier_preparer.quote
        for name in columns:
            table.c[name]  # a column the schema does not have fails here, not at the first put
        key = ", ".join(quote(c.name) for c in table.primary_key)
        self._head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) VALUES "
        self._one = "(" + ", ".join([placeholder(dialect)] * len(columns)) + ")"
        self._tail = (f" ON CONFLICT ({key}) DO " + (f"UPDATE SET {update}" if update else "NOTHING")
                      + (f" RETURNING {quote(returning)}" if returning else ""))
        self._sql: dict[int, str] = {}

    def sql(self, rows: int) -> str:
        text = self._sql.get(rows)
        if text is None:
            text = self._sql[rows] = self._head + ", ".join([self._one] * rows) + self._tail
        return text

    def __call__(self, conn: sa.Connection, rows: Sequence[tuple]) -> Sequence[Any]:
        if not rows:
            return []
        return execute(conn, self.sql(len(rows)), [value for row in rows for value in row])
