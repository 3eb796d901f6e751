"""Settings of the embedded collector (`profefe serve`) and the helpers the CLI loads them with.

Every role owns a frozen dataclass with its defaults; the CLI fills them from flags, each flag
also readable from a `PROFEFE_*` environment variable. Nothing here reads the environment.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from services.ingest_api.config import IngestConfig
from services.query_api.config import QueryConfig

DEFAULT_ADDR = "127.0.0.1:10100"


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

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'profefe.db'}"
