"""PostgreSQL connections that never wait forever for the server.

`statement_timeout` makes the server cancel a slow statement, but its answer can still be lost on
the way: a network that drops packets while the connection stays open (a half-open connection,
a firewall's blackhole) leaves libpq waiting for a reply that will never come, with no timeout of
its own. Here every wait on one connection (a statement, a commit, a ping) is bounded: past the
deadline the connection is closed and the call fails as a lost connection does, so the pool
drops it and the caller sees `Unavailable`. Imported for PostgreSQL engines only.
"""
from __future__ import annotations

from time import monotonic
from typing import Any, Generator

import psycopg
import sqlalchemy as sa
from psycopg.abc import PQGen
from sqlalchemy import event

__all__ = ["bound_replies"]


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose waits on the server end after `reply_timeout` seconds."""

    reply_timeout: float = 0.0

    def wait(self, gen: PQGen[Any], *args: Any, **kwargs: Any) -> Any:
        # The rest of the arguments as psycopg's version has them (its wait interval, ...).
        if self.reply_timeout <= 0:
            return super().wait(gen, *args, **kwargs)
        return super().wait(self._bounded(gen, monotonic() + self.reply_timeout), *args, **kwargs)

    def _bounded(self, gen: PQGen[Any], deadline: float) -> Generator[Any, Any, Any]:
        """`gen`, resumed by the waiting loop on every readiness and every `interval` without,
        until `deadline`; then the connection is closed: its state is unknown past that point."""
        try:
            wanted = next(gen)
            while True:
                ready = yield wanted
                if monotonic() > deadline:
                    self.close()
                    raise psycopg.OperationalError(
                        f"no answer from PostgreSQL within {self.reply_timeout:g}s; connection closed")
                wanted = gen.send(ready)
        except StopIteration as done:
            return done.value
        finally:
            gen.close()


def bound_replies(engine: sa.Engine, seconds: float) -> None:
    """Make `engine` open `BoundedConnection`s waiting at most `seconds` for any answer."""

    @event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> BoundedConnection:
        conn = BoundedConnection.connect(*cargs, **cparams)
        conn.reply_timeout = seconds
        return conn
