"""The fault suite's stack, and the table it prints at the end of the run."""
from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from tests.e2e import distributed
from tests.faults import harness
from tests.toxiproxy import Toxiproxy, ToxiproxyError
from tests.support import unavailable

class Rig:
    """One distributed deployment for the scenarios of a module: two query-api replicas, an
    ingest-api and two indexers. With `proxies`, every daemon reaches Kafka, S3 and PostgreSQL
    through a Toxiproxy proxy, and the load reaches the ingest-api through one: `links` names
    them, for the network faults. Without, everything connects directly: passing every byte on
    cost Toxiproxy 6-7 core-seconds a scenario, which only the network's faults need."""

    def __init__(self, stack: distributed.Stack, proxies: Toxiproxy | None) -> None:
        self.stack = stack
        self.proxies = proxies
        self.links: list[str] = []
        if proxies is not None:
            self.links = [f"{stack.name}-{name}" for name in ("s3", "postgres", "ingest")]
            stack.via["s3"] = proxies.create(self.links[0], stack.s3["endpoint"])
            url = sa.engine.make_url(stack.admin_url)
            stack.via["postgres"] = proxies.create(self.links[1], f"{url.host}:{url.port}")
            # Made by scripts/services.sh: the broker's second listener advertises this proxy.
            stack.via["kafka"] = proxies.proxy("kafka")["listen"]
            self.links.append("kafka")
        stack.migrate()
        # Two replicas, as a deployment scales its reads: the audit's downloads go to both.
        self.queries = [stack.start("query-api"), stack.start("query-api")]
        self.query = self.queries[0]
        self.query_urls = [str(q.url) for q in self.queries]
        self.ingest = stack.start("ingest-api")
        assert self.ingest.url is not None
        self.ingest_url = self.ingest.url
        if proxies is not None:
            self.ingest_url = "http://" + proxies.create(self.links[2], self.ingest.url.removeprefix("http://"))
        self.indexers = [stack.start("indexer"), stack.start("indexer")]
        for d in (*self.queries, self.ingest, *self.indexers):
            stack.wait_ready(d)
        self.fixtures = harness.cpu_fixtures()
        self.fixture_stacks = [harness.stack_values(p) for p in self.fixtures]

    def blobs(self):
        from shared.adapters.blobs_s3 import S3BlobStore

        return S3BlobStore(self._s3_settings())

    def s3(self):
        """A client of the bucket the indexers write, and the bucket's name (for the audit)."""
        from shared.adapters.blobs_s3 import make_client

        settings = self._s3_settings()
        return make_client(settings, pool_size=1), settings.bucket

    def _s3_settings(self):
        from tests.contract.conftest import s3_test_settings

        return s3_test_settings(dict(self.stack.s3), f"profefe-{self.stack.name}")

    def check_alive(self) -> None:
        for d in self.stack.daemons:
            assert d.proc.poll() is None, f"{d.role} exited with {d.proc.returncode}:\n{d.log()[-4000:]}"


@pytest.fixture(scope="module")
def rig(request, tmp_path_factory):
    """The stack of test_faults.py's scenarios, connected directly."""
    yield from _rig(request, tmp_path_factory, proxied=False)


@pytest.fixture(scope="module")
def proxied_rig(request, tmp_path_factory):
    """The stack of the network's faults, every connection through Toxiproxy."""
    yield from _rig(request, tmp_path_factory, proxied=True)


def _rig(request, tmp_path_factory, *, proxied: bool):
    kafka, s3, pg = distributed.real_services(request)
    url = sa.engine.make_url(pg)
    for name, address in (("kafka", kafka), ("s3", s3["endpoint"]), ("postgres", f"{url.host}:{url.port}")):
        if not harness.managed_by_services_sh(name, address):
            unavailable(f"{name} at {address} run by scripts/services.sh (the fault suite stops and starts it)")
    proxies: Toxiproxy | None = None
    if proxied:
        proxies = request.getfixturevalue("toxiproxy")
        try:
            kafka_proxy = proxies.proxy("kafka")["listen"]
        except ToxiproxyError as exc:
            unavailable(f"Toxiproxy's kafka proxy, made by scripts/services.sh ({exc})")
        assert_broker_behind(kafka_proxy)
    stack = distributed.Stack(kafka, s3, pg, tmp_path_factory.mktemp("faults"),
                              name="fault" + uuid.uuid4().hex[:8])
    try:
        yield Rig(stack, proxies)
    finally:
        stack.close()
        if proxies is not None:
            for name in proxies.names():
                if name.startswith(f"{stack.name}-"):
                    proxies.delete(name)


def assert_broker_behind(address: str) -> None:
    """The broker answers through its proxy: a broker started before it had its second listener
    (scripts/kafka/service.sh) does not, and every daemon would only log connection errors."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=address, client_id="profefe-faults", request_timeout_ms=10_000)
        try:
            admin.list_topics()
        finally:
            admin.close()
    except KafkaError as exc:
        raise AssertionError(f"Kafka does not answer through Toxiproxy at {address} ({exc}); a broker started "
                             "before its proxied listener existed needs `scripts/services.sh down kafka` "
                             "and `up kafka`") from exc


def pytest_terminal_summary(terminalreporter) -> None:
    if harness.ROWS:
        terminalreporter.section("fault suite: every acknowledged profile accounted for")
        terminalreporter.write_line(harness.table(harness.ROWS))
