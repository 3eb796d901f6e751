"""The query API as a Flask app: `create_app(stores, cfg)`."""
from __future__ import annotations

from flask import Flask

from services import http
from services.query_api.config import QueryConfig
from services.query_api.query import Stores
from services.query_api.routes import blueprint


def create_app(stores: Stores, cfg: QueryConfig | None = None) -> Flask:
    app = Flask(__name__)
    http.install(app)
    app.register_blueprint(blueprint(stores, cfg or QueryConfig()))
    return app
