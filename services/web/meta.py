"""The routes every API app has besides its own: `/api/0/version`, the OpenAPI description, and
`/healthz` + `/readyz` answered from the same checks the workers' health server uses."""
from __future__ import annotations

import json
import os
from importlib import metadata

from flask import Blueprint, Flask, Response, current_app

from services.observe.health import Check, readiness
from services.web import openapi
from services.web.envelope import JSON
from services.web.errors import reply, to_reply


def install(app: Flask, checks: dict[str, Check]) -> Flask:
    """Version, OpenAPI, `/healthz` (the process answers) and `/readyz` (every one of `checks`)."""
    app.register_blueprint(_version_blueprint())
    app.register_blueprint(_health_blueprint(checks))
    return app


def _health_blueprint(checks: dict[str, Check]) -> Blueprint:
    bp = Blueprint("health", __name__)

    @bp.get("/healthz")
    def healthz() -> Response:
        return reply("ok")

    @bp.get("/readyz")
    def readyz() -> Response:
        problem = readiness(checks)
        return to_reply(problem) if problem is not None else reply("ready")

    return bp


def _version_blueprint() -> Blueprint:
    bp = Blueprint("version", __name__)

    @bp.get("/api/0/version")
    def version() -> Response:
        return reply(build_info())

    @bp.get(openapi.OPENAPI_PATH)
    def openapi_document() -> Response:
        # A raw OpenAPI document, not an envelope: tools read it as it is.
        served: dict[str, set[str]] = {}
        for rule in current_app.url_map.iter_rules():
            served.setdefault(openapi.flask_rule_to_path(rule.rule), set()).update(rule.methods or ())
        doc = openapi.document(served, version=build_info()["version"])
        return Response(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", status=200, mimetype=JSON)

    return bp


def build_info() -> dict[str, str]:
    """What is running: the package version, and the commit/build time stamped in at build time."""
    try:
        version = metadata.version("profefe-py")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {
        "version": version,
        "commit": os.environ.get("PROFEFE_BUILD_COMMIT", "unknown"),
        "build_time": os.environ.get("PROFEFE_BUILD_TIME", "unknown"),
        "implementation": "profefe-py",
    }


