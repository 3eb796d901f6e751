"""The composition root: the only module that picks adapters and assembles the roles."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from flask import Blueprint, Flask, Response

from services import auth, http, observe
from services.batching import MAX_BATCH, GroupWriter
from services.compactor.config import CompactorConfig
from services.compactor.worker import Compactor
from services.config import (
    CompactorRoleConfig,
    IndexerRoleConfig,
    IngestApiConfig,
    MigrateConfig,
    QueryApiConfig,
    ServeConfig,
)
from services.indexer.steps import index_at_once
from services.indexer.worker import Worker
from services.metrics import CompactorCollector, IndexerCollector, Metrics
from services.ingest_api import app as ingest_app
from services.ingest_api import routes as ingest_routes
from services.ingest_api.routes import Publish
from services.query_api import app as query_app
from services.query_api import routes as query_routes
from services.query_api.query import Stores
from shared.adapters.blobs_local import LocalBlobStore
from shared.adapters.meta_sql import SqlMetaStore, migrate
from shared.adapters.windows_sql import SqlWindowStore
from shared.errors import Unavailable
from shared.model import IngestRecord
from shared.ports import BlobStore, MetaStore

if TYPE_CHECKING:
    from shared.adapters.blobs_s3 import S3Settings
    from shared.adapters.queue_kafka import KafkaSettings


@dataclass
class EmbeddedPorts:
    """The local adapters of `profefe serve`: a blob folder and a SQLite file under data_dir, and
    the one writer thread that uploads are stored through."""

    blobs: LocalBlobStore
    meta: SqlMetaStore
    windows: SqlWindowStore
    writer: GroupWriter[IngestRecord] | None = None

    def publisher(self) -> Publish:
        """Uploads go through one writer thread that stores what is waiting in one transaction."""
        if self.writer is None:
            self.writer = group_commit(self.blobs, self.meta)
        return self.writer.submit

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()  # every upload already queued is written before the database closes
        self.windows.close()
        self.meta.close()


def prepare_embedded(cfg: ServeConfig) -> None:
    """Create the data folder and bring the SQLite schema up to date."""
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(cfg.database_url)


def open_embedded(cfg: ServeConfig, *, prepare: bool = True) -> EmbeddedPorts:
    """Open the adapters; first `prepare_embedded`, unless the caller did that already."""
    if prepare:
        prepare_embedded(cfg)
    return EmbeddedPorts(blobs=LocalBlobStore(cfg.blob_dir), meta=SqlMetaStore(cfg.database_url),
                         windows=SqlWindowStore(cfg.database_url))


def embedded_compactor(ports: EmbeddedPorts, cfg: CompactorConfig, metrics: Metrics | None = None) -> Compactor:
    """The compactor of `profefe serve`, over the same SQLite file and blob folder; its stats
    join the app's metrics when given."""
    compactor = Compactor(ports.windows, ports.blobs, cfg)
    if metrics is not None:
        metrics.watch(CompactorCollector(lambda: compactor.stats))
    return compactor


def group_commit(blobs: LocalBlobStore, meta: MetaStore, max_batch: int = MAX_BATCH) -> GroupWriter[IngestRecord]:
    """The embedded publisher: the indexer step run in-process, so an upload returns once its blob
    and row are stored. Concurrent uploads share a transaction and a folder sync: one writer
    thread indexes whatever is waiting (at most `max_batch`)."""
    return GroupWriter(lambda records: index_at_once(records, blobs, meta), max_batch=max_batch,
                       name="ingest-writer")


def embedded_app(ports: EmbeddedPorts, cfg: ServeConfig, metrics: Metrics | None = None) -> Flask:
    """Ingest and query routes in one app (one router, so a wrong method is a 405 on every path)."""
    app = Flask("profefe")
    app.config["MAX_CONTENT_LENGTH"] = cfg.ingest.max_body_bytes
    http.install(app)
    app.register_blueprint(ingest_routes.blueprint(ports.publisher(), cfg.ingest))
    stores = Stores(meta=ports.meta, blobs=observe.CountingBlobs(ports.blobs), windows=ports.windows)
    app.register_blueprint(query_routes.blueprint(stores, cfg.query))
    app.register_blueprint(health_blueprint({"sqlite": ports.meta.ping, "blobs": ports.blobs.ping}))
    return auth.protect(observe.instrument(app, metrics or Metrics("serve")), cfg.auth)


# The distributed roles ---------------------------------------------------------------------
# Each builder takes its role's config (validated: no local-only adapter) and opens only what
# that role talks to. Kafka, S3 and PostgreSQL clients are imported here, never by `serve`.


def health_blueprint(checks: dict[str, Callable[[], None]]) -> Blueprint:
    """`/healthz` (the process answers) and `/readyz` (every dependency answers: 503 naming it)."""
    bp = Blueprint("health", __name__)

    @bp.get("/healthz")
    def healthz() -> Response:
        return http.reply("ok")

    @bp.get("/readyz")
    def readyz() -> Response:
        for name, ping in checks.items():
            try:
                ping()
            except Unavailable as exc:
                return http.to_reply(Unavailable(f"{name}: {exc}", retry_after=exc.retry_after))
        return http.reply("ready")

    return bp


def open_queue(kafka: KafkaSettings, publish_timeout: float = 10.0):
    from shared.adapters.queue_kafka import KafkaQueue

    return KafkaQueue(kafka, publish_timeout=publish_timeout)


def open_blobs(s3: S3Settings):
    from shared.adapters.blobs_s3 import S3BlobStore

    return S3BlobStore(s3)


def ingest_api_app(queue, cfg: IngestApiConfig, metrics: Metrics | None = None) -> Flask:
    """`profefe ingest-api`: a 200 means Kafka acknowledged the record with acks=all."""
    cfg.validate()
    timeout = cfg.ingest.publish_timeout
    metrics = metrics or Metrics("ingest-api")

    def publish(record: IngestRecord) -> None:
        queue.publish(record, timeout)

    app = ingest_app.create_app(observe.counting_publish(publish, metrics), cfg.ingest)
    app.register_blueprint(health_blueprint({"kafka": queue.ping}))
    return auth.protect(observe.instrument(app, metrics), cfg.auth)


@dataclass
class QueryPorts:
    blobs: BlobStore
    meta: SqlMetaStore
    windows: SqlWindowStore

    def close(self) -> None:
        self.windows.close()
        self.meta.close()


def open_query(cfg: QueryApiConfig) -> QueryPorts:
    cfg.validate()
    return QueryPorts(blobs=open_blobs(cfg.s3), meta=SqlMetaStore(cfg.database_url),
                      windows=SqlWindowStore(cfg.database_url))


def query_api_app(ports: QueryPorts, cfg: QueryApiConfig, metrics: Metrics | None = None) -> Flask:
    stores = Stores(meta=ports.meta, blobs=observe.CountingBlobs(ports.blobs), windows=ports.windows)
    app = query_app.create_app(stores, cfg.query)
    app.register_blueprint(health_blueprint({"postgresql": ports.meta.ping, "s3": ports.blobs.ping}))
    return auth.protect(observe.instrument(app, metrics or Metrics("query-api")), cfg.auth)


def indexer_worker(cfg: IndexerRoleConfig) -> Worker:
    """poll (Kafka) -> blobs (S3) -> rows in one transaction (PostgreSQL) -> commit offsets."""
    cfg.validate()
    return Worker(open_queue(cfg.kafka), open_blobs(cfg.s3), SqlMetaStore(cfg.database_url), cfg.indexer)


def migrate_all(cfg: MigrateConfig) -> list[str]:
    """Topics, bucket and schema, each created when missing; returns what was done, line by line."""
    from shared.adapters.blobs_s3 import create_bucket
    from shared.adapters.queue_kafka import create_topics

    cfg.validate()
    done = []
    created = create_topics(cfg.kafka, partitions=cfg.partitions, replication=cfg.replication)
    for topic in (cfg.kafka.topic, cfg.kafka.dead_letter_topic):
        done.append(f"kafka topic {topic}: {'created' if topic in created else 'exists'}")
    done.append(f"s3 bucket {cfg.s3.bucket}: {'created' if create_bucket(cfg.s3) else 'exists'}")
    migrate(cfg.database_url)
    done.append("database schema: up to date")
    return done


def compactor_worker(cfg: CompactorRoleConfig) -> Compactor:
    """Windows and retention over PostgreSQL (claims with SKIP LOCKED) and S3; replicas are safe."""
    cfg.validate()
    return Compactor(SqlWindowStore(cfg.database_url), open_blobs(cfg.s3), cfg.compactor)


# Health and metrics of the workers, on their own port -------------------------------------------


def indexer_health(worker: Worker, host: str, port: int) -> observe.HealthServer:
    """`/healthz` (the loop moves), `/readyz` (Kafka, S3, PostgreSQL answer), `/metrics`; not started."""
    metrics = Metrics("indexer")
    metrics.watch(IndexerCollector(lambda: worker.counts))
    alive = observe.observe_indexer(worker, metrics)
    checks = {"kafka": worker.queue.ping, "s3": worker.blobs.ping, "postgresql": worker.meta.ping}
    return observe.HealthServer(host, port, metrics=metrics, checks=checks, alive=alive.problem)


def compactor_health(compactor: Compactor, host: str, port: int) -> observe.HealthServer:
    """`/healthz` (the process answers), `/readyz` (PostgreSQL, S3 answer), `/metrics`; not started."""
    metrics = Metrics("compactor")
    metrics.watch(CompactorCollector(lambda: compactor.stats))
    checks = {"postgresql": compactor.windows.ping, "s3": compactor.blobs.ping}
    return observe.HealthServer(host, port, metrics=metrics, checks=checks)
