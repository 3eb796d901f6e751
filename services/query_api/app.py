"""The query API as a Flask app: `create_app(stores, cfg, checks)`."""
from __future__ import annotations

from flask import Flask

from services.observe.health import Check
from services.query_api.config import QueryConfig
from services.query_api.query import Stores
from services.query_api import querier_routes
from services.query_api.routes import blueprint
from services.query_api import ui
from services.web import compression, errors, meta


def create_app(stores: Stores, cfg: QueryConfig | None = None, checks: dict[str, Check] | None = None) -> Flask:
    """`/readyz` answers from `checks`."""
    app = Flask(__name__)
    errors.install(app)
    compression.install(app)
    meta.install(app, checks or {})
    cfg = cfg or QueryConfig()
    app.register_blueprint(blueprint(stores, cfg))
    app.register_blueprint(querier_routes.blueprint(stores, cfg))
    app.register_blueprint(ui.blueprint())
    return app
