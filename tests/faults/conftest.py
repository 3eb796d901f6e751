"""The fault suite's stack, and the table it prints at the end of the run."""
from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from tests.e2e import distributed
from tests.faults import harness
from tests.support import unavailable

ROWS: list[dict] = []


class Rig:
    """One distributed deployment for every scenario: query-api, ingest-api and two indexers."""

    def __init__(self, stack: distributed.Stack) -> None:
        self.stack = stack
        stack.migrate()
        self.query = stack.start("query-api")
        self.ingest = stack.start("ingest-api")
        self.indexers = [stack.start("indexer"), stack.start("indexer")]
        for d in (self.query, self.ingest, *self.indexers):
            stack.wait_ready(d)
        self.fixtures = harness.cpu_fixtures()
        self.fixture_stacks = [harness.stack_values(p) for p in self.fixtures]

    def blobs(self):
        from shared.adapters.blobs_s3 import S3BlobStore
        from tests.contract.conftest import s3_test_settings

        return S3BlobStore(s3_test_settings(dict(self.stack.s3), f"profefe-{self.stack.name}"))

    def check_alive(self) -> None:
        for d in self.stack.daemons:
            assert d.proc.poll() is None, f"{d.role} exited with {d.proc.returncode}:\n{d.log()[-4000:]}"


@pytest.fixture(scope="module")
def rig(request, tmp_path_factory):
    kafka, s3, pg = distributed.real_services(request)
    url = sa.engine.make_url(pg)
    for name, address in (("kafka", kafka), ("s3", s3["endpoint"]), ("postgres", f"{url.host}:{url.port}")):
        if not harness.managed_by_services_sh(name, address):
            unavailable(f"{name} at {address} run by scripts/services.sh (the fault suite stops and starts it)")
    stack = distributed.Stack(kafka, s3, pg, tmp_path_factory.mktemp("faults"),
                              name="fault" + uuid.uuid4().hex[:8])
    try:
        yield Rig(stack)
    finally:
        stack.close()


def pytest_terminal_summary(terminalreporter) -> None:
    if ROWS:
        terminalreporter.section("fault suite: every acknowledged profile accounted for")
        terminalreporter.write_line(harness.table(ROWS))
