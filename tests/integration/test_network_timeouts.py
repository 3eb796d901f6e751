"""The adapters' timeouts against the real servers behind a real Toxiproxy: a network that drops
everything while the connections stay open makes a call fail as `Unavailable` instead of waiting
for an answer that never comes, and the same store object works again once the network is back.
(The fault suite does the same to a whole deployment under load.)"""
from __future__ import annotations

import dataclasses
import threading
import uuid
from typing import Callable

import pytest
import sqlalchemy as sa

from shared.adapters.settings import SqlTimeouts
from shared.errors import Unavailable
from tests.toxiproxy import Toxic, Toxiproxy

# Far above every bound under test (a few seconds): only a call that waits forever reaches it.
HANG = 120.0
BLACKHOLE = [Toxic("drop-up", "timeout", "upstream", {"timeout": 0}),
             Toxic("drop-down", "timeout", "downstream", {"timeout": 0})]


class Proxy:
    """A proxy of the test's own: `to(upstream)` makes it and returns its address."""

    def __init__(self, toxiproxy: Toxiproxy) -> None:
        self.toxiproxy = toxiproxy
        self.name = f"timeouts-{uuid.uuid4().hex[:8]}"

    def to(self, upstream: str) -> str:
        return self.toxiproxy.create(self.name, upstream)


@pytest.fixture
def proxy(toxiproxy: Toxiproxy):
    made = Proxy(toxiproxy)
    yield made
    if made.name in toxiproxy.names():
        toxiproxy.delete(made.name)


def outcome(call: Callable[[], object]) -> BaseException | None:
    """What `call()` raised (None: it returned), or AssertionError if it was still waiting after HANG."""
    raised: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            raised.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG)
    assert raised, f"still waiting after {HANG:g}s"
    return raised[0]


def blackholed(toxiproxy: Toxiproxy, name: str, call: Callable[[], object]) -> BaseException | None:
    for toxic in BLACKHOLE:
        toxiproxy.add(name, toxic)
    try:
        return outcome(call)
    finally:
        for toxic in BLACKHOLE:
            toxiproxy.remove(name, toxic.name)


@pytest.mark.postgres
def test_postgres_calls_end_when_the_network_drops_everything(postgres_url, toxiproxy, proxy):
    from shared.adapters.meta_sql import SqlMetaStore
    from shared.adapters.sql import unavailable_on_error

    url = sa.engine.make_url(postgres_url)
    host, _, port = proxy.to(f"{url.host}:{url.port}").rpartition(":")
    via = url.set(host=host, port=int(port)).render_as_string(hide_password=False)
    store = SqlMetaStore(via, SqlTimeouts(connect=2, statement=3))

    def statement() -> None:
        with unavailable_on_error(via), store.engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_sleep(1)"))

    try:
        store.ping()
        # The statement is sent, then its answer is dropped on the way back: the server is done
        # long before its statement timeout, and only the client's own bound ends the wait.
        drop = threading.Timer(0.3, lambda: [toxiproxy.add(proxy.name, t) for t in BLACKHOLE])
        drop.start()
        try:
            in_flight = outcome(statement)
        finally:
            drop.join()
            for t in BLACKHOLE:
                toxiproxy.remove(proxy.name, t.name)
        assert isinstance(in_flight, Unavailable), in_flight
        assert "no answer from PostgreSQL within 8s" in str(in_flight), in_flight
        # A new connection into the blackhole: the connect timeout.
        on_connect = blackholed(toxiproxy, proxy.name, store.ping)
        assert isinstance(on_connect, Unavailable), on_connect
        assert "timeout" in str(on_connect), on_connect
        # The network is back: the same store answers, without a restart.
        store.ping()
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_cancels_a_statement_past_the_statement_timeout(postgres_url):
    from shared.adapters.sql import create_engine, unavailable_on_error

    engine = create_engine(postgres_url, SqlTimeouts(connect=2, statement=0.5))
    try:
        with pytest.raises(Unavailable, match="statement timeout"):
            with unavailable_on_error(postgres_url), engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_sleep(5)"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


@pytest.mark.s3
def test_s3_calls_end_when_the_network_drops_everything(s3_settings, toxiproxy, proxy):
    from shared.adapters.blobs_s3 import S3BlobStore, create_bucket
    from tests.contract.conftest import s3_test_settings
    from tests.services import drop_bucket

    bucket = f"timeouts-{uuid.uuid4().hex[:8]}"
    direct = s3_test_settings(s3_settings, bucket)
    create_bucket(direct)
    settings = dataclasses.replace(direct, endpoint=proxy.to(direct.endpoint), connect_timeout=1.0, read_timeout=1.0)
    store = S3BlobStore(settings)
    try:
        store.put("a", b"before")
        failed = blackholed(toxiproxy, proxy.name, lambda: store.put("b", b"during"))
        assert isinstance(failed, Unavailable), failed
        store.put("c", b"after")
        assert store.get("c") == b"after"
    finally:
        store.close()
        drop_bucket(s3_settings, bucket)
