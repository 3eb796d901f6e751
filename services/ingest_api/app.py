"""The ingest API as a Flask app: `create_app(publish, cfg)`."""
from __future__ import annotations

from flask import Flask

from services import http
from services.ingest_api.config import IngestConfig
from services.ingest_api.routes import Publish, blueprint


def create_app(publish: Publish, cfg: IngestConfig | None = None) -> Flask:
    """`publish` makes a record durable (a queue's publish, or the indexer step run in-process)."""
    cfg = cfg or IngestConfig()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_body_bytes
    http.install(app)
    app.register_blueprint(blueprint(publish, cfg))
    return app
