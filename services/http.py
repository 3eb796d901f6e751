"""The one place errors become HTTP replies, and profefe's JSON envelope.

Success: `{"code":200,"body":...}`; error: `{"code":<status>,"error":"<message>"}`; `code` is
always the HTTP status and every JSON reply says `application/json`. Unexpected exceptions are
logged with their traceback and answered as a bare 500, never leaking the details.
"""
from __future__ import annotations

import json
import logging
import os
import re
from importlib import metadata
from typing import Any

from urllib.parse import unquote_to_bytes

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from services.auth import CHALLENGE, Unauthorized
from services import openapi
from shared import errors
from shared.model import ProfileMeta, format_time
from shared.pprof import IncompatibleProfiles, MalformedProfile, PprofError, ProfileTooLarge

log = logging.getLogger(__name__)

JSON = "application/json"

# Domain and library errors -> (status, how the message reads).
_TABLE: list[tuple[type[BaseException], int, Any]] = [
    (errors.BadRequest, 400, str),
    (Unauthorized, 401, str),
    (errors.NotFound, 404, str),
    (errors.PayloadTooLarge, 413, str),
    (errors.Unprocessable, 422, str),
    (errors.Unavailable, 503, lambda e: f"service unavailable: {e}"),
    (ProfileTooLarge, 413, lambda e: f"profile too large: over {e.limit} bytes once decompressed"),
    (IncompatibleProfiles, 422, lambda e: f"cannot merge: {e}"),
    (MalformedProfile, 400, lambda e: f"malformed profile ({e})"),
    (PprofError, 400, lambda e: f"malformed profile ({e})"),
]

# Router errors keep profefe's wording where it has one.
_HTTP_MESSAGES = {404: "nothing found", 405: "method not allowed", 413: "request body too large"}


def reply(body: Any, status: int = 200) -> Response:
    """A success envelope."""
    return _json({"code": status, "body": body}, status)


def error_reply(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    resp = _json({"code": status, "error": message}, status)
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _json(payload: dict[str, Any], status: int) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False) + "\n", status=status, mimetype=JSON)


def to_reply(exc: BaseException) -> Response:
    """THE table: a raised error -> its envelope."""
    for kind, status, message in _TABLE:
        if isinstance(exc, kind):
            headers = {}
            if isinstance(exc, errors.Unavailable):
                headers["Retry-After"] = str(exc.retry_after)
            if isinstance(exc, Unauthorized):
                headers["WWW-Authenticate"] = CHALLENGE
            return error_reply(status, message(exc), headers)
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        message = _HTTP_MESSAGES.get(status) or (exc.description or exc.name).lower()
        headers = {}
        if status == 405 and exc.valid_methods:
            headers["Allow"] = ", ".join(exc.valid_methods)
        return error_reply(status, message, headers)
    log.error("unexpected error", exc_info=exc)
    return error_reply(500, "internal error")


def install(app: Flask) -> Flask:
    """Every error through `to_reply`, undecodable URLs refused, and the version and OpenAPI routes."""
    app.register_error_handler(Exception, to_reply)
    app.before_request(refuse_undecodable_url)
    app.register_blueprint(_version_blueprint())
    return app


def refuse_undecodable_url() -> None:
    """400 for a path or query string that is not UTF-8 once percent-decoded.

    werkzeug would carry on with replacement characters (path) or the escapes left as they were
    (query), so `service=%ff` would be stored as the four characters `%FF`.
    """
    environ = request.environ
    try:
        environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise errors.BadRequest("bad request: the path is not valid UTF-8") from None
    try:
        unquote_to_bytes(environ.get("QUERY_STRING", "").encode("latin-1")).decode("utf-8")
    except UnicodeError:
        raise errors.BadRequest("bad request: the query string is not valid UTF-8") from None


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


def profile_json(meta: ProfileMeta) -> dict[str, Any]:
    """profefe's profile JSON; `labels` omitted when empty."""
    out: dict[str, Any] = {
        "id": meta.id,
        "type": meta.type.value,
        "service": meta.service,
    }
    if meta.labels:
        out["labels"] = [{"key": lb.key, "value": lb.value} for lb in meta.labels]
    out["created_at"] = format_time(meta.created_at)
    return out


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def download(data: bytes, filename: str) -> Response:
    """Bytes as an attachment `go tool pprof` and browsers both take."""
    safe = _UNSAFE.sub("_", filename).strip("._") or "profile"
    resp = Response(data, status=200, mimetype="application/octet-stream")
    resp.headers["Content-Disposition"] = f'attachment; filename="{safe}"'
    return resp
