"""Connect's unary protocol over HTTP/1.1 (connectrpc.com/docs/protocol), for the Pyroscope
routes of both APIs: protobuf or JSON messages in and out, errors as Connect's JSON
`{"code": "...", "message": "..."}` with the status from the one table in services/web/errors.py."""
from __future__ import annotations

import json
from typing import TypeVar

from flask import Request, Response
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from services.web.body import decoded_body, media_type
from services.web.errors import describe
from shared.errors import BadRequest, UnsupportedMediaType

PROTO = "application/proto"
JSON = "application/json"

# HTTP status -> Connect's error code (connectrpc.com/docs/protocol#error-codes).
CODES = {400: "invalid_argument", 401: "unauthenticated", 403: "permission_denied", 404: "not_found",
         405: "unimplemented", 413: "resource_exhausted", 415: "invalid_argument", 422: "invalid_argument",
         429: "resource_exhausted", 503: "unavailable"}

M = TypeVar("M", bound=Message)


def error(exc: BaseException) -> Response:
    status, message, headers = describe(exc)
    code = CODES.get(status, "internal" if status >= 500 else "unknown")
    resp = Response(json.dumps({"code": code, "message": message}), status=status, mimetype=JSON, headers=headers)
    if status == 415:
        resp.headers["Accept-Post"] = f"{PROTO}, {JSON}"
    return resp


def content_kind(req: Request) -> str:
    """The request's message encoding, PROTO or JSON; anything else is 415."""
    kind = media_type(req)
    if kind not in (PROTO, JSON):
        raise UnsupportedMediaType(f"Content-Type {kind[:64]!r} is not supported (send {PROTO} or {JSON})")
    return kind


def decode(message: M, body: bytes, kind: str) -> M:
    """`body` parsed into `message`, from protobuf or Connect's JSON (unknown JSON fields ignored,
    as protobuf ignores unknown fields)."""
    if kind == PROTO:
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            raise BadRequest(f"cannot decode the request: {exc}") from None
        return message
    try:
        json_format.Parse(body.decode("utf-8") or "{}", message, ignore_unknown_fields=True)
    except (json_format.ParseError, UnicodeDecodeError) as exc:
        raise BadRequest(f"cannot decode the request: {exc}"[:512]) from None
    return message


def read(req: Request, message: M, max_body: int, max_decompressed: int) -> tuple[M, str]:
    """The request's message and its encoding, within the body limits."""
    kind = content_kind(req)
    return decode(message, decoded_body(req, max_body, max_decompressed), kind), kind


def reply(message: Message, kind: str) -> Response:
    """`message` in the request's encoding, uncompressed as every other answer of the API (a proxy
    in front may compress)."""
    if kind == PROTO:
        return Response(message.SerializeToString(), status=200, mimetype=kind)
    return Response(json_format.MessageToJson(message, indent=None), status=200, mimetype=kind)
