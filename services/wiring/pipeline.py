"""The distributed roles, each assembled from its role config: only what that role talks to is
opened, and the Kafka and S3 clients are imported here, never by `profefe serve`."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from services.observe.health import Check, HealthServer
from services.observe.liveness import IndexerMetrics, Progress
from services.observe.metrics import IndexerCollector, Metrics
from services.process import runner
from services.roles import CompactorRole, IndexerRole, IngestApiRole, MigrateRole, QueryApiRole
from services.wiring.startup import CannotStart, announce
from shared.adapters.settings import KafkaSettings, S3Settings
from shared.model import IngestRecord
from shared.ports import BlobStore, Queue
from shared.settings import Address

# Each role imports what only it uses inside its builder (Flask apps, SQLAlchemy stores, the
# workers): a daemon's start then loads its own role's libraries alone.
if TYPE_CHECKING:
    from flask import Flask

    from services.compactor.worker import Compactor
    from services.indexer.worker import Indexer
    from shared.adapters.blobs_s3 import S3BlobStore
    from shared.adapters.meta_sql import SqlMetaStore
    from shared.adapters.queue_kafka import KafkaQueue
    from shared.adapters.windows_sql import SqlWindowStore


def open_queue(kafka: KafkaSettings) -> KafkaQueue:
    from shared.adapters.queue_kafka import KafkaQueue

    return KafkaQueue(kafka)


def open_blobs(s3: S3Settings) -> S3BlobStore:
    from shared.adapters.blobs_s3 import S3BlobStore

    return S3BlobStore(s3)


# ingest-api -------------------------------------------------------------------------------------


def ingest_api_app(queue: Queue, cfg: IngestApiRole, metrics: Metrics | None = None) -> Flask:
    """`profefe ingest-api`: a 200 means Kafka acknowledged the record with acks=all."""
    from services.ingest_api import app as ingest_app
    from services.web import auth
    from services.web.access import counting_publish, instrument

    kafka = cfg.validate()
    metrics = metrics or Metrics("ingest-api")

    def publish(record: IngestRecord) -> None:
        queue.publish(record, kafka.publish_timeout)

    app = ingest_app.create_app(counting_publish(publish, metrics), cfg.ingest, {"kafka": queue.ping})
    return auth.protect(instrument(app, metrics), cfg.auth)


def run_ingest_api(cfg: IngestApiRole) -> int:
    queue = open_queue(cfg.validate())
    try:
        app = ingest_api_app(queue, cfg)
        return runner.serve(app, cfg.addr.host, cfg.addr.port, threads=cfg.threads, read_timeout=cfg.read_timeout,
                            on_ready=lambda where: announce(f"profefe ingest-api: listening on http://{where}, "
                                                            f"topic {queue.settings.topic}"))
    finally:
        queue.close()


# query-api --------------------------------------------------------------------------------------


@dataclass
class QueryPorts:
    blobs: BlobStore
    meta: SqlMetaStore
    windows: SqlWindowStore

    def close(self) -> None:
        self.blobs.close()
        self.windows.close()
        self.meta.close()


def open_query(cfg: QueryApiRole) -> QueryPorts:
    from shared.adapters.meta_sql import SqlMetaStore
    from shared.adapters.windows_sql import SqlWindowStore

    s3 = cfg.validate()
    return QueryPorts(blobs=open_blobs(s3), meta=SqlMetaStore(cfg.database_url, cfg.sql_timeouts),
                      windows=SqlWindowStore(cfg.database_url, cfg.sql_timeouts))


def query_api_app(ports: QueryPorts, cfg: QueryApiRole, metrics: Metrics | None = None) -> Flask:
    from services.query_api import app as query_app
    from services.query_api.query import Stores
    from services.web import auth
    from services.web.access import CountingBlobs, instrument

    stores = Stores(meta=ports.meta, blobs=CountingBlobs(ports.blobs), windows=ports.windows)
    app = query_app.create_app(stores, cfg.query, {"postgresql": ports.meta.ping, "s3": ports.blobs.ping})
    return auth.protect(instrument(app, metrics or Metrics("query-api")), cfg.auth)


def run_query_api(cfg: QueryApiRole) -> int:
    ports = open_query(cfg)
    try:
        app = query_api_app(ports, cfg)
        return runner.serve(app, cfg.addr.host, cfg.addr.port, threads=cfg.threads, read_timeout=cfg.read_timeout,
                            on_ready=lambda where: announce(f"profefe query-api: listening on http://{where}"))
    finally:
        ports.close()


# indexer ----------------------------------------------------------------------------------------


def indexer(cfg: IndexerRole, metrics: Metrics | None = None) -> Indexer:
    """poll (Kafka) -> blobs (S3) -> rows in one transaction (PostgreSQL) -> commit offsets."""
    from services.indexer.worker import Indexer
    from shared.adapters.meta_sql import SqlMetaStore

    kafka, s3 = cfg.validate()
    queue = open_queue(kafka)
    on_step = IndexerMetrics(queue, metrics) if metrics is not None else None
    built = Indexer(queue, open_blobs(s3), SqlMetaStore(cfg.database_url, cfg.sql_timeouts), cfg.indexer,
                    on_step=on_step)
    if metrics is not None:
        metrics.watch(IndexerCollector(lambda: built.counts))
    return built


def indexer_liveness(worker: Indexer) -> Progress:
    """Alive while steps go by; retries move too: a loop waiting out a store outage is alive."""
    return Progress(lambda: (worker.counts.steps, worker.counts.retries))


def run_indexer(cfg: IndexerRole) -> int:
    metrics = Metrics("indexer")
    worker = indexer(cfg, metrics)
    checks = {"kafka": worker.queue.ping, "s3": worker.blobs.ping, "postgresql": worker.meta.ping}
    kafka, _ = cfg.validate()
    with _health(cfg.health_addr, metrics, checks, indexer_liveness(worker)):
        announce(f"profefe indexer: consuming {kafka.topic} as group {kafka.group}")
        try:
            return runner.run_until_signalled(worker, "the batch in hand")
        finally:
            worker.blobs.close()


# compactor --------------------------------------------------------------------------------------


def compactor(cfg: CompactorRole) -> Compactor:
    """Windows and retention over PostgreSQL (claims with SKIP LOCKED) and S3; replicas are safe."""
    from services.compactor.worker import Compactor
    from shared.adapters.windows_sql import SqlWindowStore

    s3 = cfg.validate()
    return Compactor(SqlWindowStore(cfg.database_url, cfg.sql_timeouts), open_blobs(s3), cfg.compactor)


def run_compactor(cfg: CompactorRole) -> int:
    worker = compactor(cfg)
    metrics = Metrics("compactor")
    worker.after_pass = metrics.export_compactor(lambda: worker.stats)
    checks = {"postgresql": worker.windows.ping, "s3": worker.blobs.ping}
    with _health(cfg.health_addr, metrics, checks, None):
        announce(f"profefe compactor: every {cfg.compactor.interval:g}s")
        return runner.run_until_signalled(worker, "the window in hand")


# migrate ----------------------------------------------------------------------------------------


def migrate_all(cfg: MigrateRole) -> Iterator[str]:
    """Topics, bucket and schema, each created when missing; says what was done, line by line."""
    from shared.adapters.blobs_s3 import create_bucket
    from shared.adapters.meta_sql import migrate
    from shared.adapters.queue_kafka import create_topics

    kafka, s3 = cfg.validate()
    created = create_topics(kafka, partitions=cfg.partitions, replication=cfg.replication)
    for topic in (kafka.topic, kafka.dead_letter_topic):
        yield f"kafka topic {topic}: {'created' if topic in created else 'exists'}"
    yield f"s3 bucket {s3.bucket}: {'created' if create_bucket(s3) else 'exists'}"
    migrate(cfg.database_url, cfg.sql_timeouts)
    yield "database schema: up to date"


def run_migrate(cfg: MigrateRole) -> int:
    for line in migrate_all(cfg):
        announce(f"profefe migrate: {line}")
    return 0


# the workers' health server ---------------------------------------------------------------------


@contextmanager
def _health(addr: Address | None, metrics: Metrics, checks: dict[str, Check],
            alive: Progress | None) -> Iterator[None]:
    """The health server on `addr` for the block (none when `addr` is None); a port in use is a
    usage error."""
    if addr is None:
        yield
        return
    try:
        server = HealthServer(addr.host, addr.port, metrics=metrics, checks=checks,
                              alive=alive.problem if alive else (lambda: None)).start()
    except OSError as exc:
        raise CannotStart(f"--health-addr {addr}: {exc.strerror or exc}", usage=True) from None
    announce(f"profefe: health and metrics on http://{server.address}")
    try:
        yield
    finally:
        server.close()
