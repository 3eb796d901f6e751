"""Pyroscope's ingest routes: Connect's `POST /push.v1.PusherService/Push` and the older
`POST /ingest`, each answering errors in its own protocol's shape (statuses from the one table in
services/web/errors.py), and storing through the same `publish` as profefe's route."""
from __future__ import annotations

import io

from flask import Blueprint, Request, Response, request
from werkzeug.formparser import MultiPartParser

from services.ingest_api.config import IngestConfig
from services.ingest_api.push_pb2 import PushRequest, PushResponse
from services.ingest_api.pyroscope import ingest_record, push_records, sample_type_display_names
from services.web import connect
from services.web.body import decoded_body, media_type
from services.web.errors import describe
from shared.errors import BadRequest, UnsupportedMediaType
from shared.ports import Publish

PUSH_PATH = "/push.v1.PusherService/Push"
INGEST_PATH = "/ingest"

# Bodies /ingest never takes: a form or JSON there is a client pointed at the wrong route.
_NOT_INGEST = ("application/json", "application/x-www-form-urlencoded")
_MAX_FORM_PARTS = 8


def text_error(exc: BaseException) -> Response:
    # Pyroscope's /ingest answers errors as plain text, which its agents log as they are.
    status, message, headers = describe(exc)
    return Response(message + "\n", status=status, mimetype="text/plain", headers=headers)


def request_body(req: Request, cfg: IngestConfig) -> bytes:
    return decoded_body(req, cfg.max_body_bytes, cfg.max_decompressed_bytes)


def blueprint(publish: Publish, cfg: IngestConfig) -> Blueprint:
    bp = Blueprint("pyroscope", __name__)

    @bp.post(PUSH_PATH)
    def push() -> Response:
        pushed, kind = connect.read(request, PushRequest(), cfg.max_body_bytes, cfg.max_decompressed_bytes)
        for record in push_records(pushed, cfg):  # each acknowledged before the next; a 200 once all are
            publish(record)
        return connect.reply(PushResponse(), kind)

    @bp.post(INGEST_PATH)
    def ingest() -> Response:
        kind = media_type(request)
        if kind in _NOT_INGEST:
            raise UnsupportedMediaType(f"Content-Type {kind!r} is not an /ingest body (send the profile as it is, "
                                       "or pyroscope-go's multipart form)")
        body = request_body(request, cfg)
        params = request.args.to_dict()
        display_names: list[str] = []
        if kind == "multipart/form-data":
            profile, config = multipart_profile(request, body)
            display_names = sample_type_display_names(config)
            params.setdefault("format", "pprof")
        else:
            profile = body
        publish(ingest_record(params, profile, cfg, display_names=display_names))
        return Response(b"", status=200)

    bp.register_error_handler(Exception, _by_route)
    return bp


def _by_route(exc: BaseException) -> Response:
    return connect.error(exc) if request.path == PUSH_PATH else text_error(exc)


def multipart_profile(req: Request, body: bytes) -> tuple[bytes, bytes | None]:
    """pyroscope-go's form: `profile` (required) and `sample_type_config` (JSON). Older SDKs add
    `prev_profile`, a cumulative heap base to subtract: it is not used, and the profile is stored as
    sent, as profefe's route stores a Go heap profile."""
    boundary = req.mimetype_params.get("boundary", "").encode("latin-1", "replace")
    if not boundary:
        raise BadRequest("multipart body without a boundary")
    parser = MultiPartParser(max_form_memory_size=len(body) + 1, max_form_parts=_MAX_FORM_PARTS)
    try:
        form, files = parser.parse(io.BytesIO(body), boundary, len(body))
    except ValueError as exc:
        raise BadRequest(f"malformed multipart body: {exc}") from None
    except Exception as exc:  # werkzeug's RequestEntityTooLarge for too many parts
        if getattr(exc, "code", None) == 413:
            raise BadRequest(f"more than {_MAX_FORM_PARTS} parts in the multipart body") from None
        raise

    def part(name: str) -> bytes | None:
        if name in files:
            return files[name].read()
        return form[name].encode("utf-8") if name in form else None

    profile = part("profile")
    if not profile:
        raise BadRequest('multipart body without a "profile" part')
    return profile, part("sample_type_config")
