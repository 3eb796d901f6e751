"""The ingest API as a Flask app: `create_app(publish, cfg, checks)`."""
from __future__ import annotations

from flask import Flask

from services.ingest_api.config import IngestConfig
from services.ingest_api import pyroscope_routes
from services.ingest_api.routes import blueprint
from services.observe.health import Check
from services.web import errors, meta
from shared.ports import Publish


def create_app(publish: Publish, cfg: IngestConfig | None = None, checks: dict[str, Check] | None = None) -> Flask:
    """`publish` makes a record durable (a queue's publish, or the embedded group commit);
    `/readyz` answers from `checks`."""
    cfg = cfg or IngestConfig()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_body_bytes
    errors.install(app)
    meta.install(app, checks or {})
    app.register_blueprint(blueprint(publish, cfg))
    app.register_blueprint(pyroscope_routes.blueprint(publish, cfg))
    return app
