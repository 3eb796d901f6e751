"""What each command runs with: one frozen dataclass per role, made of the components' configs.

Every setting is declared once, on its field (`shared.settings`); `services/options.py` makes the
role's click options from these classes and loads them back. A distributed role's `validate()`
refuses local-only adapters (exit 2). Nothing here reads the environment or connects anywhere.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from services.web.auth import AuthConfig
from services.compactor.config import CompactorConfig
from services.indexer.config import IndexerConfig
from services.ingest_api.config import IngestConfig
from services.query_api.config import QueryConfig
from shared.adapters.settings import KafkaSettings, S3Settings, SqlTimeouts, record_max_bytes
from shared.model import MAX_BODY_BYTES
from shared.settings import Address, Setting, component, optional_address, setting, setting_from


HTTP_SERVERS = ("waitress", "native")
MAX_WORKERS = 64  # processes `serve --workers` may fork
READ_TIMEOUT = 30.0  # longest a client may take to send one request, headers and body

# Settings that several roles offer, with the same flag, help and range.
ADDR = Setting("Where to listen.", metavar="HOST:PORT", parse=Address.parse, show=str)
THREADS = Setting("HTTP worker threads.", minimum=1, maximum=256)
READ_TIMEOUT_SETTING = Setting("Seconds a client may take to send one whole request; the connection is closed "
                               "after.", minimum=0.5, maximum=3600)
DATABASE_URL = Setting("PostgreSQL, as postgresql+psycopg://user:pass@host:port/db.", metavar="URL",
                       hidden_default=True)
DB_CONNECT_TIMEOUT = Setting("Seconds to open a PostgreSQL connection.", minimum=2, maximum=600)
DB_STATEMENT_TIMEOUT = Setting("Seconds one SQL statement may run: PostgreSQL cancels it then (statement_timeout), "
                               "and a connection still without an answer 5 s later is dropped; 0: no limit.",
                               minimum=0, maximum=86400)
HEALTH_ADDR = Setting("Serve /healthz, /readyz and /metrics here; off when empty.", metavar="HOST:PORT",
                      parse=optional_address, show=str, hidden_default=True)
BODY_FOR_KAFKA = Setting("Largest upload accepted, as sent; sizes the Kafka messages too.", minimum=1)

LISTEN = Address("127.0.0.1", 10100)  # profefe's port: agents find the collector where they expect it
LISTEN_QUERY = Address("127.0.0.1", 10101)  # beside the ingest-api on one host
INGEST_AUTH = ("ingest_tokens", "ingest_tokens_file")
READ_AUTH = ("read_tokens", "read_tokens_file")


@dataclass(frozen=True)
class ServeRole:
    """`profefe serve`: ingest and query in one process over a SQLite file and a blob folder."""

    addr: Address = setting_from(ADDR, LISTEN)
    data_dir: Path = setting(Path("./data"), "SQLite file and blob folder live here.", metavar="DIR", parse=Path,
                             show=lambda p: str(p) if p.is_absolute() else f"./{p}")
    ingest: IngestConfig = component(IngestConfig)
    query: QueryConfig = component(QueryConfig)
    threads: int = setting_from(THREADS, 16)
    workers: int = setting(1, "Processes sharing the listening socket, one core each; the compactor runs in "
                              "the first.", minimum=1, maximum=MAX_WORKERS)
    compactor: CompactorConfig = component(CompactorConfig, flags={"interval": "--compact-interval"},
                                           helps={"interval": "Seconds between compactor passes; 0 runs no "
                                                              "compactor."})
    auth: AuthConfig = component(AuthConfig)
    read_timeout: float = setting_from(READ_TIMEOUT_SETTING, READ_TIMEOUT)
    http: str = setting("native", "The HTTP server: waitress, or native (connections handled in Rust, uploads "
                                    "taken by one thread in batches).", choices=HTTP_SERVERS)

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'profefe.db'}"


class LocalOnly(ValueError):
    """A distributed role was given a local-only adapter; str(e) says which and what to do."""


def require_postgres(role: str, database_url: str) -> None:
    if not database_url:
        raise LocalOnly(f"{role}: no database URL (--database-url or PROFEFE_DATABASE_URL)")
    scheme = database_url.split(":", 1)[0].lower()
    if not scheme.startswith("postgresql"):
        raise LocalOnly(
            f"{role}: the metadata database must be PostgreSQL (postgresql+psycopg://...), not {scheme}:; "
            "a local database cannot be shared by several processes on several hosts. "
            "For one process with SQLite use `profefe serve`."
        )


class _Postgres:
    """The PostgreSQL timeouts of a role that has them (its fields, declared from the settings above)."""

    db_connect_timeout: int
    db_statement_timeout: float

    @property
    def sql_timeouts(self) -> SqlTimeouts:
        return SqlTimeouts(self.db_connect_timeout, self.db_statement_timeout)


def require_kafka(role: str, kafka: KafkaSettings | None) -> KafkaSettings:
    if kafka is None:
        raise LocalOnly(f"{role}: no Kafka bootstrap servers (--kafka-bootstrap or PROFEFE_KAFKA_BOOTSTRAP); "
                        "the in-memory queue only exists inside `profefe serve`")
    return kafka


def require_s3(role: str, s3: S3Settings | None) -> S3Settings:
    if s3 is None:
        raise LocalOnly(f"{role}: no S3 endpoint (--s3-endpoint or PROFEFE_S3_ENDPOINT); "
                        "a local blob folder only exists inside `profefe serve`")
    return s3


def _sized(kafka: KafkaSettings | None, max_body_bytes: int) -> KafkaSettings | None:
    """Kafka's messages sized for the role's largest body."""
    if kafka is None:
        return None
    return dataclasses.replace(kafka, max_message_bytes=record_max_bytes(max_body_bytes))


@dataclass(frozen=True)
class IngestApiRole:
    """`profefe ingest-api`: validates uploads and publishes them to Kafka."""

    addr: Address = setting_from(ADDR, LISTEN)
    # Its only Kafka client is a producer, bounded by the publish timeout.
    kafka: KafkaSettings | None = component(KafkaSettings, optional=True, present_if="bootstrap",
                                            exclude=("request_timeout", "session_timeout"))
    ingest: IngestConfig = component(IngestConfig)
    threads: int = setting_from(THREADS, 16)
    auth: AuthConfig = component(AuthConfig, only=INGEST_AUTH)  # its ingest tokens guard uploads
    read_timeout: float = setting_from(READ_TIMEOUT_SETTING, READ_TIMEOUT)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kafka", _sized(self.kafka, self.ingest.max_body_bytes))

    def validate(self) -> KafkaSettings:
        return require_kafka("ingest-api", self.kafka)


@dataclass(frozen=True)
class QueryApiRole(_Postgres):
    """`profefe query-api`: reads PostgreSQL and S3."""

    addr: Address = setting_from(ADDR, LISTEN_QUERY)
    database_url: str = setting_from(DATABASE_URL, "")
    db_connect_timeout: int = setting_from(DB_CONNECT_TIMEOUT, 5)
    db_statement_timeout: float = setting_from(DB_STATEMENT_TIMEOUT, 30.0)
    s3: S3Settings | None = component(S3Settings, optional=True, present_if="endpoint")
    query: QueryConfig = component(QueryConfig, exclude=("use_windows",))
    threads: int = setting_from(THREADS, 16)
    auth: AuthConfig = component(AuthConfig, only=READ_AUTH)  # its read tokens guard every read
    read_timeout: float = setting_from(READ_TIMEOUT_SETTING, READ_TIMEOUT)

    def validate(self) -> S3Settings:
        require_postgres("query-api", self.database_url)
        return require_s3("query-api", self.s3)


@dataclass(frozen=True)
class IndexerRole(_Postgres):
    """`profefe indexer`: Kafka -> S3 blobs + PostgreSQL rows."""

    kafka: KafkaSettings | None = component(KafkaSettings, optional=True, present_if="bootstrap",
                                            exclude=("publish_timeout",))
    s3: S3Settings | None = component(S3Settings, optional=True, present_if="endpoint")
    database_url: str = setting_from(DATABASE_URL, "")
    db_connect_timeout: int = setting_from(DB_CONNECT_TIMEOUT, 5)
    db_statement_timeout: float = setting_from(DB_STATEMENT_TIMEOUT, 30.0)
    max_body_bytes: int = setting_from(BODY_FOR_KAFKA, MAX_BODY_BYTES)
    indexer: IndexerConfig = component(IndexerConfig)
    health_addr: Address | None = setting_from(HEALTH_ADDR, None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kafka", _sized(self.kafka, self.max_body_bytes))

    def validate(self) -> tuple[KafkaSettings, S3Settings]:
        kafka, s3 = require_kafka("indexer", self.kafka), require_s3("indexer", self.s3)
        require_postgres("indexer", self.database_url)
        return kafka, s3


@dataclass(frozen=True)
class CompactorRole(_Postgres):
    """`profefe compactor`: windows and retention over PostgreSQL and S3; run as many as you like."""

    s3: S3Settings | None = component(S3Settings, optional=True, present_if="endpoint")
    database_url: str = setting_from(DATABASE_URL, "")
    db_connect_timeout: int = setting_from(DB_CONNECT_TIMEOUT, 5)
    # Retention's statements over a fleet's year of rows take minutes (docs/benchmarks.md).
    db_statement_timeout: float = setting_from(DB_STATEMENT_TIMEOUT, 600.0)
    compactor: CompactorConfig = component(CompactorConfig)
    health_addr: Address | None = setting_from(HEALTH_ADDR, None)

    def validate(self) -> S3Settings:
        s3 = require_s3("compactor", self.s3)
        require_postgres("compactor", self.database_url)
        return s3


@dataclass(frozen=True)
class MigrateRole(_Postgres):
    """`profefe migrate`: the topics, the bucket and the database schema, each made if missing."""

    kafka: KafkaSettings | None = component(KafkaSettings, optional=True, present_if="bootstrap",
                                            exclude=("publish_timeout", "session_timeout"))
    s3: S3Settings | None = component(S3Settings, optional=True, present_if="endpoint")
    database_url: str = setting_from(DATABASE_URL, "")
    db_connect_timeout: int = setting_from(DB_CONNECT_TIMEOUT, 5)
    # No limit by default: a migration may rewrite or index every row of a big table.
    db_statement_timeout: float = setting_from(DB_STATEMENT_TIMEOUT, 0.0)
    max_body_bytes: int = setting_from(BODY_FOR_KAFKA, MAX_BODY_BYTES)
    partitions: int = setting(6, "Partitions of a new topic: the most indexers that can share the work.",
                              env="PROFEFE_KAFKA_PARTITIONS", minimum=1, maximum=1000)
    replication: int = setting(1, "Replicas of each partition of a new topic.", env="PROFEFE_KAFKA_REPLICATION",
                               minimum=1, maximum=16)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kafka", _sized(self.kafka, self.max_body_bytes))

    def validate(self) -> tuple[KafkaSettings, S3Settings]:
        kafka, s3 = require_kafka("migrate", self.kafka), require_s3("migrate", self.s3)
        require_postgres("migrate", self.database_url)
        if not 1 <= self.partitions <= 1000:
            raise ValueError(f"partitions must be in 1..1000, got {self.partitions}")
        if not 1 <= self.replication <= 16:
            raise ValueError(f"replication must be in 1..16, got {self.replication}")
        return kafka, s3
