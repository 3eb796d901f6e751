"""The one place errors become HTTP replies, in profefe's JSON envelope.

Success: `{"code":200,"body":...}`; error: `{"code":<status>,"error":"<message>"}`; `code` is
always the HTTP status and every JSON reply says `application/json`. Unexpected exceptions are
logged with their traceback and answered as a bare 500, never leaking the details.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any, Callable
from urllib.parse import unquote_to_bytes

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from services.web.auth import CHALLENGE, Unauthorized
from services.web.envelope import JSON, envelope
from shared import errors
from shared.model import ProfileMeta, format_time
from shared.pprof import IncompatibleProfiles, MalformedProfile, PprofError, ProfileTooLarge

log = logging.getLogger(__name__)

# Domain and library errors -> (status, how the message reads).
_TABLE: list[tuple[type[BaseException], int, Callable[[Any], str]]] = [
    (errors.BadRequest, 400, lambda e: f"bad request: {e}"),
    (Unauthorized, 401, str),
    (errors.NotFound, 404, str),
    (errors.PayloadTooLarge, 413, str),
    (errors.UnsupportedMediaType, 415, str),
    (errors.Unprocessable, 422, str),
    (errors.InsufficientStorage, 507, lambda e: f"insufficient storage: {e}"),
    (errors.Unavailable, 503, lambda e: f"service unavailable: {e}"),
    (ProfileTooLarge, 413, lambda e: f"profile too large: over {e.limit} bytes once decompressed"),
    (IncompatibleProfiles, 422, lambda e: f"cannot merge: {e}"),
    (MalformedProfile, 400, lambda e: f"malformed profile ({e})"),
    (PprofError, 400, lambda e: f"malformed profile ({e})"),
]


class Throttled:
    """A warning for a cause that repeats (a store down answers every request 503): the first at
    once, then at most one per `seconds`, saying how many answers it stands for."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self.clock = seconds, clock
        self._lock = threading.Lock()
        self._next = 0.0
        self._held = 0

    def warn(self, what: str) -> None:
        now = self.clock()
        with self._lock:
            if now < self._next:
                self._held += 1
                return
            held, self._held, self._next = self._held, 0, now + self.seconds
        more = f" (and {held} more since the last such line)" if held else ""
        log.warning("answered 503: %s%s", what, more)


unavailable_log = Throttled(10.0)

# Router errors keep profefe's wording where it has one.
_HTTP_MESSAGES = {404: "nothing found", 405: "method not allowed", 413: "request body too large"}


def reply(body: Any, status: int = 200) -> Response:
    """A success envelope."""
    return Response(envelope(status, body), status=status, mimetype=JSON)


def error_reply(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(envelope(status, message), status=status, mimetype=JSON, headers=headers)


def describe(exc: BaseException) -> tuple[int, str, dict[str, str]]:
    """THE table: a raised error -> (status, message, headers); unexpected errors are logged
    with their traceback and described as a bare 500. Every protocol's reply is built from this."""
    for kind, status, message in _TABLE:
        if isinstance(exc, kind):
            headers = {}
            if isinstance(exc, errors.Unavailable):
                headers["Retry-After"] = str(exc.retry_after)
                unavailable_log.warn(str(exc))
            if isinstance(exc, Unauthorized):
                headers["WWW-Authenticate"] = CHALLENGE
            return status, message(exc), headers
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        text = _HTTP_MESSAGES.get(status) or (exc.description or exc.name).lower()
        headers = {}
        allowed = getattr(exc, "valid_methods", None)  # werkzeug's MethodNotAllowed
        if status == 405 and allowed:
            headers["Allow"] = ", ".join(allowed)
        return status, text, headers
    log.error("unexpected error", exc_info=exc)
    return 500, "internal error", {}


def to_reply(exc: BaseException) -> Response:
    """A raised error -> its envelope."""
    return error_reply(*describe(exc))


def install(app: Flask) -> Flask:
    """Every error through `to_reply`, and undecodable URLs refused."""
    app.register_error_handler(Exception, to_reply)
    app.before_request(refuse_undecodable_url)
    return app


def refuse_undecodable_url() -> None:
    """400 for a path or query string that is not UTF-8 once percent-decoded.

    werkzeug would carry on with replacement characters (path) or the escapes left as they were
    (query), so `service=%ff` would be stored as the four characters `%FF`.
    """
    environ = request.environ
    check_decodable(environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""))


def check_decodable(path_info: str, query_string: str) -> None:
    """`refuse_undecodable_url` on a WSGI path (decoded, as latin-1) and query string (as sent)."""
    try:
        path_info.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise errors.BadRequest("the path is not valid UTF-8") from None
    try:
        unquote_to_bytes(query_string.encode("latin-1")).decode("utf-8")
    except UnicodeError:
        raise errors.BadRequest("the query string is not valid UTF-8") from None


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
