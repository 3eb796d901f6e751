"""gzip for every text reply (JSON, the UI's page, script and stylesheet) when the client
accepts it, in one after-request hook rather than in each route. A flame graph's JSON shrinks
about tenfold; pprof downloads are gzip already and pass as they are."""
from __future__ import annotations

import gzip

from flask import Flask, Response, request

TEXT_TYPES = ("application/json", "text/html", "text/css", "text/javascript", "application/javascript")
MIN_BYTES = 1024  # below a packet, compressing saves nothing
LEVEL = 5  # most of level 9's size at a fraction of its time


def install(app: Flask) -> Flask:
    app.after_request(compress)
    return app


def compress(resp: Response) -> Response:
    """`resp` gzipped when the request accepts gzip and the body is text worth it."""
    if (resp.status_code != 200 or resp.mimetype not in TEXT_TYPES or "Content-Encoding" in resp.headers
            or request.method == "HEAD"):
        return resp
    resp.vary.add("Accept-Encoding")
    if request.accept_encodings["gzip"] <= 0:  # its quality: 0 when absent or refused, "*" counts
        return resp
    if resp.direct_passthrough:  # a static file: read it here (the UI's files are small)
        resp.direct_passthrough = False
    body = resp.get_data()
    if len(body) < MIN_BYTES:
        return resp
    resp.set_data(gzip.compress(body, compresslevel=LEVEL, mtime=0))
    resp.headers["Content-Encoding"] = "gzip"
    etag, weak = resp.get_etag()
    if etag and not weak:
        resp.set_etag(etag, weak=True)  # another encoding of the same content, as nginx marks it
    return resp

