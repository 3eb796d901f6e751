"""Request bodies within their limits: as sent, and gunzipped when the request says
`Content-Encoding: gzip` (Connect's request compression, and the Pyroscope agents')."""
from __future__ import annotations

from flask import Request

from shared import pprof
from shared.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

_READ = 256 << 10
GZIP_MAGIC = b"\x1f\x8b"  # a body that starts so is gzip, whatever its headers say


def too_large(limit: int) -> PayloadTooLarge:
    """The refusal of a body over `limit` bytes, whichever server read it."""
    return PayloadTooLarge(f"request body too large: over {limit} bytes")


def read_body(req: Request, limit: int) -> bytes:
    """The request body, refused as soon as it passes `limit` bytes (never buffered past it).

    With a Content-Length (waitress always sets one) exactly that many bytes are read, through
    werkzeug's guarded stream. Without one, a server that marks its input terminated lets us read
    to the end ourselves: werkzeug's guard would refuse even a body of exactly `limit` bytes.
    """
    length = req.content_length
    if length is not None and length > limit:
        raise too_large(limit)
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
        raise too_large(limit)
    return bytes(out)


def decoded_body(req: Request, max_body: int, max_decompressed: int) -> bytes:
    """The body within `max_body` as sent, gunzipped within `max_decompressed` when the request
    says `Content-Encoding: gzip`; other encodings are 415."""
    body = read_body(req, max_body)
    encoding = (req.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding != "gzip":
        raise UnsupportedMediaType(f"Content-Encoding {encoding[:32]!r} is not supported (send gzip or identity)")
    if not body.startswith(GZIP_MAGIC):
        raise BadRequest("Content-Encoding is gzip but the body is not")
    try:
        return pprof.decompress(body, max_decompressed=max_decompressed)
    except pprof.MalformedProfile as exc:
        raise BadRequest(f"request body: {exc}") from None


def media_type(req: Request) -> str:
    return (req.mimetype or "").strip().lower()
