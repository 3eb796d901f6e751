"""POST /api/0/profiles: read the body within its limit, validate, publish, answer the profile."""
from __future__ import annotations

from flask import Blueprint, Response, request

from services.web.body import read_body
from services.web.errors import profile_json, reply
from services.ingest_api.collect import collect
from services.ingest_api.config import IngestConfig
from shared.ports import Publish


def blueprint(publish: Publish, cfg: IngestConfig) -> Blueprint:
    bp = Blueprint("ingest", __name__)

    @bp.post("/api/0/profiles")
    def create_profile() -> Response:
        body = read_body(request, cfg.max_body_bytes)
        record = collect(request.args, body, cfg)
        publish(record)
        return reply(profile_json(record.meta()))

    return bp
