"""POST /api/0/profiles: read the body within its limit, validate, publish, answer the profile."""
from __future__ import annotations

from typing import Callable

from flask import Blueprint, Request, Response, request

from services.http import profile_json, reply
from services.ingest_api.collect import collect
from services.ingest_api.config import IngestConfig
from shared.errors import PayloadTooLarge
from shared.model import IngestRecord

Publish = Callable[[IngestRecord], None]

_READ = 256 << 10


def read_body(req: Request, limit: int) -> bytes:
    """The request body, refused as soon as it passes `limit` bytes (never buffered past it)."""
    if req.content_length is not None and req.content_length > limit:
        raise PayloadTooLarge(f"request body too large: over {limit} bytes")
    out = bytearray()
    stream = req.stream
    while True:
        chunk = stream.read(min(_READ, limit + 1 - len(out)))
        if not chunk:
            return bytes(out)
        out += chunk
        if len(out) > limit:
            raise PayloadTooLarge(f"request body too large: over {limit} bytes")


def blueprint(publish: Publish, cfg: IngestConfig) -> Blueprint:
    bp = Blueprint("ingest", __name__)

    @bp.post("/api/0/profiles")
    def create_profile() -> Response:
        body = read_body(request, cfg.max_body_bytes)
        record = collect(request.args, body, cfg)
        publish(record)
        return reply(profile_json(record.meta()))

    return bp
