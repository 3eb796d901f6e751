"""POST /api/0/profiles: read the body within its limit, validate, publish, answer the profile."""
from __future__ import annotations

from flask import Blueprint, Request, Response, request

from services.web.errors import profile_json, reply
from services.ingest_api.collect import collect
from services.ingest_api.config import IngestConfig
from shared.errors import PayloadTooLarge
from shared.ports import Publish

_READ = 256 << 10


def read_body(req: Request, limit: int) -> bytes:
    """The request body, refused as soon as it passes `limit` bytes (never buffered past it).

    With a Content-Length (waitress always sets one) exactly that many bytes are read, through
    werkzeug's guarded stream. Without one, a server that marks its input terminated lets us read
    to the end ourselves: werkzeug's guard would refuse even a body of exactly `limit` bytes.
    """
    length = req.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"request body too large: over {limit} bytes")
    if length is not None:
        stream, want = req.stream, length
    elif req.environ.get("wsgi.input_terminated"):
        stream, want = req.environ["wsgi.input"], limit + 1
    else:
        return b""  # no length and no end marker: WSGI gives no way to find the end
    out = bytearray()
    while len(out) < want:
        chunk = stream.read(min(_READ, want - len(out)))
        if not chunk:
            break
        out += chunk
    if len(out) > limit:
        raise PayloadTooLarge(f"request body too large: over {limit} bytes")
    return bytes(out)


def blueprint(publish: Publish, cfg: IngestConfig) -> Blueprint:
    bp = Blueprint("ingest", __name__)

    @bp.post("/api/0/profiles")
    def create_profile() -> Response:
        body = read_body(request, cfg.max_body_bytes)
        record = collect(request.args, body, cfg)
        publish(record)
        return reply(profile_json(record.meta()))

    return bp
