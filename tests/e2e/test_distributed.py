"""The distributed pipeline end to end: `profefe migrate`, one ingest-api, two indexers in one
consumer group and a query-api, as subprocesses over the real Kafka, S3 and PostgreSQL.

The tests run in file order on one stack; the last one SIGTERMs every daemon and checks that each
exits 0 and that every profile the ingest API acknowledged is stored.
"""
from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition

from shared import pprof
from shared.adapters.queue_kafka import REASON_HEADER
from tests.e2e import distributed
from tests.e2e.embedded import free_port, profefe_command
from tests.e2e.test_serve_go_pprof import fixtures, raw_totals, totals_of

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.s3, pytest.mark.postgres]

WINDOW = {"from": "2000-01-01T00:00:00", "to": "2100-01-01T00:00:00"}
KINDS = ["cpu", "heap", "block", "mutex", "goroutine", "threadcreate"]


class Pipeline:
    def __init__(self, stack: distributed.Stack) -> None:
        self.stack = stack
        self.migrate_log = stack.migrate()
        self.query = stack.start("query-api")
        self.ingest = stack.start("ingest-api")
        self.indexers = [stack.start("indexer"), stack.start("indexer")]
        for d in (self.query, self.ingest, *self.indexers):
            stack.wait_ready(d)
        self.acknowledged: list[str] = []

    def post(self, body: bytes, **params: str) -> dict:
        status, _, data = distributed.request(self.ingest.url, "POST", f"/api/0/profiles?{urlencode(params)}", body)
        assert status == 200, data
        got = json.loads(data)["body"]
        self.acknowledged.append(got["id"])
        return got

    def get_json(self, path: str, **params: str) -> tuple[int, dict]:
        target = f"{path}?{urlencode(params)}" if params else path
        status, _, data = distributed.request(self.query.url, "GET", target)
        return status, json.loads(data)

    def wait_indexed(self) -> None:
        distributed.wait_visible(self.query.url, self.acknowledged)


@pytest.fixture(scope="module")
def pipeline(request, tmp_path_factory):
    kafka, s3, pg = distributed.real_services(request)
    stack = distributed.Stack(kafka, s3, pg, tmp_path_factory.mktemp("pipeline"))
    try:
        yield Pipeline(stack)
    finally:
        stack.close()


def test_migrate_made_everything_and_is_idempotent(pipeline):
    log = pipeline.migrate_log
    assert "topic profefe-e2e" in log and "created" in log and "database schema: up to date" in log
    again = subprocess.run([*profefe_command(), "migrate"], env=pipeline.stack.env(),
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count(": exists") == 3, again.stderr


@pytest.mark.go
@pytest.mark.parametrize("kind", KINDS)
def test_live_merge_totals_equal_the_inputs(pipeline, go_bin, tmp_path, kind):
    service = f"e2e-{kind}"
    paths = fixtures(kind)
    for p in paths:
        assert pipeline.post(p.read_bytes(), service=service, type=kind, labels=f"file={p.name}")["type"] == kind
    pipeline.wait_indexed()
    status, env = pipeline.get_json("/api/0/profiles", service=service, **WINDOW)
    assert status == 200 and sorted(p["labels"][0]["value"] for p in env["body"]) == sorted(p.name for p in paths)
    url = f"{pipeline.query.url}/api/0/profiles/merge?{urlencode({'service': service, 'type': kind, **WINDOW})}"
    assert raw_totals(go_bin, url, tmp_path) == totals_of(paths)


def test_downloads_are_byte_identical(pipeline):
    paths = fixtures("cpu")[:3]
    ids = [pipeline.post(p.read_bytes(), service="e2e-bytes", type="cpu")["id"] for p in paths]
    pipeline.wait_indexed()
    for i, p in zip(ids, paths):
        status, _, data = distributed.request(pipeline.query.url, "GET", f"/api/0/profiles/{i}")
        assert (status, data) == (200, p.read_bytes())


def test_an_undecodable_record_is_dead_lettered_and_the_loop_goes_on(pipeline):
    s = pipeline.stack
    junk = b"\x0a\x03not an ingest record " + uuid.uuid4().bytes
    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")
    try:
        producer.send(s.env()["PROFEFE_KAFKA_TOPIC"], key=b"junk", value=junk).get(timeout=30)
    finally:
        producer.close()
    after = pipeline.post(fixtures("cpu")[0].read_bytes(), service="e2e-after-junk", type="cpu")
    pipeline.wait_indexed()
    status, env = pipeline.get_json("/api/0/profiles", service="e2e-after-junk", **WINDOW)
    assert status == 200 and [p["id"] for p in env["body"]] == [after["id"]]

    consumer = KafkaConsumer(bootstrap_servers=s.kafka_bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=15_000)
    try:
        tp = TopicPartition(s.dead_letter_topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        dead = next((m for m in consumer if m.value == junk), None)
    finally:
        consumer.close()
    assert dead is not None, "the junk record is not on the dead-letter topic"
    reason = dict(dead.headers)[REASON_HEADER].decode()
    assert "not a protobuf IngestRecord" in reason or "bad profile id" in reason


def test_ingest_answers_503_with_retry_after_when_kafka_does_not_acknowledge(pipeline):
    nobody = f"127.0.0.1:{free_port()}"
    ingest = pipeline.stack.start("ingest-api", "--publish-timeout", "2", PROFEFE_KAFKA_BOOTSTRAP=nobody)
    pipeline.stack.wait_ready(ingest, "/healthz")
    began = time.monotonic()
    status, headers, data = distributed.request(
        ingest.url, "POST", "/api/0/profiles?service=e2e-503&type=cpu", fixtures("cpu")[0].read_bytes())
    waited = time.monotonic() - began
    env = json.loads(data)
    assert status == 503 and env["code"] == 503 and env["error"].startswith("service unavailable: Kafka")
    assert int(headers["Retry-After"]) > 0
    # The publish timeout bounds the first publish too, connecting included (it took kafka-python's
    # own 30 s to bootstrap before); the margin is only for a busy machine.
    assert waited < 2 + 8, f"the 503 took {waited:.1f} s with --publish-timeout 2"
    assert ingest.stop() == 0, ingest.log()


def test_query_answers_503_when_postgres_or_s3_is_down(pipeline):
    nobody = f"127.0.0.1:{free_port()}"
    url = sa.engine.make_url(pipeline.stack.db.url).set(port=free_port()).render_as_string(hide_password=False)
    no_db = pipeline.stack.start("query-api", PROFEFE_DATABASE_URL=url)
    no_s3 = pipeline.stack.start("query-api", PROFEFE_S3_ENDPOINT=nobody)
    for d in (no_db, no_s3):
        pipeline.stack.wait_ready(d, "/healthz")
    status, headers, data = distributed.request(no_db.url, "GET", f"/api/0/profiles?{urlencode({'service': 'x', **WINDOW})}")
    assert status == 503 and "metadata database" in json.loads(data)["error"] and headers["Retry-After"]
    one = pipeline.post(fixtures("cpu")[0].read_bytes(), service="e2e-s3-down", type="cpu")["id"]
    pipeline.wait_indexed()  # its row found, so the 503 is the blob's
    status, headers, data = distributed.request(no_s3.url, "GET", f"/api/0/profiles/{one}")
    assert status == 503 and "S3" in json.loads(data)["error"] and headers["Retry-After"]
    for d in (no_db, no_s3):
        status, _, data = distributed.request(d.url, "GET", "/readyz")
        assert status == 503, data
        assert d.stop() == 0, d.log()


def test_an_indexer_whose_store_is_down_holds_its_batch_and_gives_it_back(pipeline):
    """A third indexer with an unreachable S3 joins the group and takes partitions; what it polls
    stays uncommitted while it retries, and when it is stopped the others index it."""
    s = pipeline.stack
    broken = s.start("indexer", PROFEFE_S3_ENDPOINT=f"127.0.0.1:{free_port()}")
    s.wait_ready(broken)
    broken.wait_logged(re.compile(r"assigned partitions \d"))
    posted = fixtures("heap") * 12
    for i, p in enumerate(posted):
        # Distinct profiles: the same bytes again would be the same one.
        pipeline.post(retimed(p.read_bytes(), i), service="e2e-held", type="heap")
    broken.wait_logged(re.compile(r"index: .*S3.*retrying in"))
    assert broken.stop() == 0, broken.log()
    pipeline.wait_indexed()
    status, env = pipeline.get_json("/api/0/profiles", service="e2e-held", **WINDOW)
    assert status == 200 and len(env["body"]) == len(posted)


def retimed(data: bytes, n: int) -> bytes:
    """`data` with its time_nanos moved by `n` ns: another profile of the same content."""
    p = pprof.parse(data)
    p.time_nanos += n + 1
    return pprof.write(p)


def test_roles_refuse_local_only_adapters(pipeline, tmp_path):
    env = pipeline.stack.env(PROFEFE_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    done = subprocess.run([*profefe_command(), "indexer"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "must be PostgreSQL" in done.stderr
    env = pipeline.stack.env(PROFEFE_KAFKA_BOOTSTRAP="")
    done = subprocess.run([*profefe_command(), "ingest-api"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no Kafka bootstrap" in done.stderr


def test_sigterm_stops_every_daemon_cleanly_and_nothing_acknowledged_is_missing(pipeline):
    for p in fixtures("cpu"):
        pipeline.post(p.read_bytes(), service="e2e-last", type="cpu")
    # No waiting: whatever the indexers hold when the signal comes must be finished or given back.
    codes = {d.log_path.name: d.stop() for d in [pipeline.ingest, *pipeline.indexers]}
    assert all(code == 0 for code in codes.values()), codes
    indexed = [int(m.group(1)) for d in pipeline.indexers
               for m in [re.search(r"stopped after \d+ batches, (\d+) indexed", d.log())] if m]
    assert len(indexed) == 2 and all(n > 0 for n in indexed), "both indexers should have had a share"

    # Records given back at the stop are indexed by the next indexer of the group.
    s = pipeline.stack
    again = s.start("indexer")
    s.wait_ready(again)
    pipeline.wait_indexed()
    codes = s.stop()
    assert all(code == 0 for code in codes.values()), codes
    with s.db.engine.connect() as conn:
        stored = {r[0] for r in conn.execute(sa.text("SELECT id FROM profiles"))}
    missing = set(pipeline.acknowledged) - stored
    assert not missing, f"acknowledged but not stored: {sorted(missing)}"
