"""The composition root: the only module that picks adapters and assembles the roles."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from services import http
from services.config import ServeConfig
from services.indexer.steps import index
from services.ingest_api import routes as ingest_routes
from services.ingest_api.routes import Publish
from services.query_api import routes as query_routes
from services.query_api.query import Stores
from shared.adapters.blobs_local import LocalBlobStore
from shared.adapters.meta_sql import SqlMetaStore, migrate
from shared.model import IngestRecord
from shared.ports import BlobStore, MetaStore


@dataclass
class EmbeddedPorts:
    """The local adapters of `profefe serve`: a blob folder and a SQLite file under data_dir."""

    blobs: LocalBlobStore
    meta: SqlMetaStore

    def close(self) -> None:
        self.meta.close()


def open_embedded(cfg: ServeConfig) -> EmbeddedPorts:
    """Create the data folder, bring the SQLite schema up to date, open the adapters."""
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(cfg.database_url)
    return EmbeddedPorts(blobs=LocalBlobStore(cfg.blob_dir), meta=SqlMetaStore(cfg.database_url))


def write_through(blobs: BlobStore, meta: MetaStore) -> Publish:
    """A publisher that runs the indexer step in-process: when it returns, blob and row are stored."""

    def publish(record: IngestRecord) -> None:
        index([record], blobs, meta)

    return publish


def embedded_app(ports: EmbeddedPorts, cfg: ServeConfig) -> Flask:
    """Ingest and query routes in one app (one router, so a wrong method is a 405 on every path)."""
    app = Flask("profefe")
    app.config["MAX_CONTENT_LENGTH"] = cfg.ingest.max_body_bytes
    http.install(app)
    app.register_blueprint(ingest_routes.blueprint(write_through(ports.blobs, ports.meta), cfg.ingest))
    app.register_blueprint(query_routes.blueprint(Stores(meta=ports.meta, blobs=ports.blobs), cfg.query))
    return app
