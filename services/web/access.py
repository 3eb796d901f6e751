"""What every API request leaves behind: a request id in and out, counts and latency by URL rule,
one JSON log line, and `/metrics` on the app."""
from __future__ import annotations

import re
import time
import uuid
from typing import Any, Iterator, Sequence

from flask import Flask, Response, g, request

from services.observe.metrics import CONTENT_TYPE, Metrics
from services.process.logs import access_log
from shared.errors import Unavailable
from shared.model import IngestRecord
from shared.ports import BlobStore, Publish

REQUEST_ID_HEADER = "X-Request-Id"
INGEST_ROUTE = "/api/0/profiles"
MERGE_ROUTES = ("/api/0/profiles/merge", "/api/0/profiles/<ids>")

_SAFE_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def request_id(sent: str | None) -> str:
    """The caller's `X-Request-Id` when it is a sane token, else a fresh one."""
    if sent and _SAFE_ID.fullmatch(sent):
        return sent
    return uuid.uuid4().hex


def instrument(app: Flask, metrics: Metrics) -> Flask:
    """Request id in and out, counts and latency by URL rule, one JSON log line per request, `/metrics`."""

    @app.before_request
    def _begin() -> None:
        g.profefe_started = time.perf_counter()
        g.request_id = request_id(request.headers.get(REQUEST_ID_HEADER))

    @app.after_request
    def _end(resp: Response) -> Response:
        started = g.get("profefe_started")
        # A hook before ours may have refused the request (an undecodable URL): the id is read here then.
        rid = g.get("request_id") or request_id(request.headers.get(REQUEST_ID_HEADER))
        resp.headers[REQUEST_ID_HEADER] = rid
        seconds = time.perf_counter() - started if started is not None else 0.0
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        if route == "/metrics":
            return resp  # scrapes would drown the request log and the request counts
        reads = g.get("profefe_blob_reads", 0)
        if route in MERGE_ROUTES and resp.status_code == 200 and (reads > 1 or route == MERGE_ROUTES[0]):
            metrics.merge_inputs.observe(reads)
        record_request(metrics, request_id=rid, method=request.method, route=route, path=request.path,
                       status=resp.status_code, seconds=seconds, bytes_in=request.content_length or 0,
                       bytes_out=resp.calculate_content_length() or 0, remote=request.remote_addr)
        return resp

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        return Response(metrics.render(), mimetype=None, content_type=CONTENT_TYPE)

    return app


def record_request(metrics: Metrics, *, request_id: str, method: str, route: str, path: str, status: int,
                   seconds: float, bytes_in: int, bytes_out: int, remote: str | None) -> None:
    """Counts and latency by route, the ingest counters, and the request's log line."""
    metrics.requests.labels(route, method, str(status)).inc()
    metrics.latency.labels(route, method).observe(seconds)
    if route == INGEST_ROUTE and method == "POST" and status == 200:
        metrics.ingested_profiles.inc()
        metrics.ingested_bytes.inc(bytes_in)
    access_log.info("request", extra={"fields": {
        "request_id": request_id,
        "method": method,
        "route": route,
        "path": path,
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
        "remote": remote,
    }})


class CountingBlobs:
    """A blob store that counts the reads of the current request (how many inputs a merge read)."""

    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs

    def get(self, key: str) -> bytes:
        data = self._blobs.get(key)
        _count_read()
        return data

    def get_many(self, keys: Sequence[str]) -> Iterator[bytes]:
        for data in self._blobs.get_many(keys):
            _count_read()  # as each is taken, in the request's thread (the store may read in others)
            yield data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._blobs, name)


def _count_read() -> None:
    try:
        g.profefe_blob_reads = g.get("profefe_blob_reads", 0) + 1
    except RuntimeError:  # outside a request (a compactor sharing the store)
        pass


def counting_publish(publish: Publish, metrics: Metrics) -> Publish:
    """`publish`, counting the records the queue did not acknowledge."""

    def wrapped(record: IngestRecord) -> None:
        try:
            publish(record)
        except Unavailable:
            metrics.publish_errors.inc()
            raise

    return wrapped
