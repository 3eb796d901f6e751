"""Settings of the embedded collector (`profefe serve`) and the helpers the CLI loads them with.

Every role owns a frozen dataclass with its defaults; the CLI fills them from flags, each flag
also readable from a `PROFEFE_*` environment variable. Nothing here reads the environment.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

from services.auth import AuthConfig
from services.compactor.config import CompactorConfig
from services.indexer.config import IndexerConfig
from services.ingest_api.config import IngestConfig
from services.query_api.config import QueryConfig

if TYPE_CHECKING:  # their modules import the Kafka and S3 clients, which `serve` never needs
    from shared.adapters.blobs_s3 import S3Settings
    from shared.adapters.queue_kafka import KafkaSettings

DEFAULT_ADDR = "127.0.0.1:10100"
DEFAULT_QUERY_ADDR = "127.0.0.1:10101"


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, raw: str) -> Address:
        """`host:port`, `:port` (all interfaces) or `[v6]:port`."""
        host, sep, port = raw.strip().rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"address {raw!r} is not host:port")
        host = host.strip("[]") or "0.0.0.0"
        return cls(host, int(port))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class ServeConfig:
    addr: Address = field(default_factory=lambda: Address.parse(DEFAULT_ADDR))
    data_dir: Path = Path("./data")
    threads: int = 8  # WSGI worker threads
    ingest: IngestConfig = field(default_factory=IngestConfig)
    query: QueryConfig = field(default_factory=QueryConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)  # no tokens: open

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'profefe.db'}"


# The distributed roles -----------------------------------------------------------------------


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


def require_kafka(role: str, kafka: KafkaSettings | None) -> None:
    if kafka is None:
        raise LocalOnly(f"{role}: no Kafka bootstrap servers (--kafka-bootstrap or PROFEFE_KAFKA_BOOTSTRAP); "
                        "the in-memory queue only exists inside `profefe serve`")


def require_s3(role: str, s3: S3Settings | None) -> None:
    if s3 is None:
        raise LocalOnly(f"{role}: no S3 endpoint (--s3-endpoint or PROFEFE_S3_ENDPOINT); "
                        "a local blob folder only exists inside `profefe serve`")


@dataclass(frozen=True)
class IngestApiConfig:
    """`profefe ingest-api`: validates uploads and publishes them to Kafka."""

    kafka: KafkaSettings | None
    addr: Address = field(default_factory=lambda: Address.parse(DEFAULT_ADDR))
    threads: int = 16
    ingest: IngestConfig = field(default_factory=IngestConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)  # its ingest tokens guard uploads

    def validate(self) -> None:
        require_kafka("ingest-api", self.kafka)


@dataclass(frozen=True)
class IndexerRoleConfig:
    """`profefe indexer`: Kafka -> S3 blobs + PostgreSQL rows."""

    kafka: KafkaSettings | None
    s3: S3Settings | None
    database_url: str
    indexer: IndexerConfig = field(default_factory=IndexerConfig)

    def validate(self) -> None:
        require_kafka("indexer", self.kafka)
        require_s3("indexer", self.s3)
        require_postgres("indexer", self.database_url)


@dataclass(frozen=True)
class QueryApiConfig:
    """`profefe query-api`: reads PostgreSQL and S3."""

    s3: S3Settings | None
    database_url: str
    addr: Address = field(default_factory=lambda: Address.parse(DEFAULT_QUERY_ADDR))
    threads: int = 16
    query: QueryConfig = field(default_factory=QueryConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)  # its read tokens guard every read

    def validate(self) -> None:
        require_s3("query-api", self.s3)
        require_postgres("query-api", self.database_url)


@dataclass(frozen=True)
class MigrateConfig:
    """`profefe migrate`: the topics, the bucket and the database schema, each made if missing."""

    kafka: KafkaSettings | None
    s3: S3Settings | None
    database_url: str
    partitions: int = 6
    replication: int = 1

    def validate(self) -> None:
        require_kafka("migrate", self.kafka)
        require_s3("migrate", self.s3)
        require_postgres("migrate", self.database_url)
        if not 1 <= self.partitions <= 1000:
            raise ValueError(f"partitions must be in 1..1000, got {self.partitions}")
        if not 1 <= self.replication <= 16:
            raise ValueError(f"replication must be in 1..16, got {self.replication}")


@dataclass(frozen=True)
class CompactorRoleConfig:
    """`profefe compactor`: windows and retention over PostgreSQL and S3; run as many as you like."""

    s3: S3Settings | None
    database_url: str
    compactor: CompactorConfig = field(default_factory=CompactorConfig)

    def validate(self) -> None:
        require_s3("compactor", self.s3)
        require_postgres("compactor", self.database_url)
