"""What an operator sees of a running process: request ids and one JSON log line per request,
Prometheus metrics, and the health endpoints of the workers (which serve no HTTP otherwise).

`instrument(app, metrics)` adds the request hooks and `/metrics` to a Flask app. `HealthServer`
is a small threaded HTTP server for the indexer and the compactor: `/healthz` (the loop makes
progress), `/readyz` (every dependency answers) and `/metrics`.
"""
from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from flask import Flask, Response, g, request

from services.metrics import CONTENT_TYPE, Metrics
from shared.errors import Unavailable

ACCESS_LOGGER = "profefe.access"
REQUEST_ID_HEADER = "X-Request-Id"
INGEST_ROUTE = "/api/0/profiles"
MERGE_ROUTES = ("/api/0/profiles/merge", "/api/0/profiles/<ids>")

_SAFE_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
access_log = logging.getLogger(ACCESS_LOGGER)


# Logging -------------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, any `extra={"fields": {...}}`, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(fmt: str = "text") -> None:
    """Process logs as text or JSON lines on stderr; request lines are JSON either way."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    access = logging.StreamHandler(sys.stderr)
    access.setFormatter(JsonFormatter())
    access_log.handlers[:] = [access]
    access_log.setLevel(logging.INFO)
    access_log.propagate = False


# HTTP apps -----------------------------------------------------------------------------------


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
        rid = g.get("request_id") or request_id(None)
        resp.headers[REQUEST_ID_HEADER] = rid
        seconds = time.perf_counter() - started if started is not None else 0.0
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        if route == "/metrics":
            return resp  # scrapes would drown the request log and the request counts
        metrics.requests.labels(route, request.method, str(resp.status_code)).inc()
        metrics.latency.labels(route, request.method).observe(seconds)
        if route == INGEST_ROUTE and request.method == "POST" and resp.status_code == 200:
            metrics.ingested_profiles.inc()
            metrics.ingested_bytes.inc(request.content_length or 0)
        reads = g.get("profefe_blob_reads", 0)
        if route in MERGE_ROUTES and resp.status_code == 200 and (reads > 1 or route == MERGE_ROUTES[0]):
            metrics.merge_inputs.observe(reads)
        access_log.info("request", extra={"fields": {
            "request_id": rid,
            "method": request.method,
            "route": route,
            "path": request.path,
            "status": resp.status_code,
            "duration_ms": round(seconds * 1000, 2),
            "bytes_in": request.content_length or 0,
            "bytes_out": resp.calculate_content_length() or 0,
            "remote": request.remote_addr,
        }})
        return resp

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        return Response(metrics.render(), mimetype=None, content_type=CONTENT_TYPE)

    return app


class CountingBlobs:
    """A blob store that counts the reads of the current request (how many inputs a merge read)."""

    def __init__(self, blobs) -> None:
        self._blobs = blobs

    def get(self, key: str) -> bytes:
        data = self._blobs.get(key)
        try:
            g.profefe_blob_reads = g.get("profefe_blob_reads", 0) + 1
        except RuntimeError:  # outside a request (a compactor sharing the store)
            pass
        return data

    def __getattr__(self, name: str):
        return getattr(self._blobs, name)


def counting_publish(publish: Callable, metrics: Metrics) -> Callable:
    """`publish`, counting the records the queue did not acknowledge."""

    def wrapped(record) -> None:
        try:
            publish(record)
        except Unavailable:
            metrics.publish_errors.inc()
            raise

    return wrapped


# Workers -------------------------------------------------------------------------------------


class Progress:
    """Liveness of a loop: healthy while its progress marker keeps changing within `stall_after`."""

    def __init__(self, marker: Callable[[], object], stall_after: float = 120.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._marker = marker
        self._stall_after = stall_after
        self._clock = clock
        self._last = marker()
        self._since = clock()
        self._lock = threading.Lock()

    def problem(self) -> str | None:
        with self._lock:
            now, marker = self._clock(), self._marker()
            if marker != self._last:
                self._last, self._since = marker, now
                return None
            idle = now - self._since
        if idle > self._stall_after:
            return f"no progress for {idle:.0f}s"
        return None


def observe_indexer(worker, metrics: Metrics, *, lag_every: float = 15.0,
                    clock: Callable[[], float] = time.monotonic) -> Progress:
    """Time each batch and sample the consumer lag between batches, in the loop's own thread
    (the Kafka consumer is not thread-safe). Returns the loop's liveness."""
    step = worker.step
    state = {"steps": 0, "lag_at": float("-inf")}

    def timed_step() -> int:
        started = clock()
        settled = step()
        if settled:
            metrics.batch_size.observe(settled)
            metrics.batch_seconds.observe(clock() - started)
        state["steps"] += 1
        lag = getattr(worker.queue, "lag", None)
        if lag is not None and clock() - state["lag_at"] >= lag_every:
            try:
                behind = lag()
            except Unavailable:
                behind = {}  # the next poll reports Kafka trouble; a missing sample is not worth a retry
            for partition, records in behind.items():
                metrics.consumer_lag.labels(str(partition)).set(records)
            if behind:  # until partitions are assigned, ask again on the next step
                state["lag_at"] = clock()
        return settled

    worker.step = timed_step
    # Retries move too: a loop waiting out a store outage is alive, only a stuck one is not.
    return Progress(lambda: (state["steps"], worker.counts.retries))


Check = Callable[[], None]


class HealthServer:
    """`/healthz`, `/readyz` and `/metrics` on their own port, in a daemon thread."""

    def __init__(self, host: str, port: int, *, metrics: Metrics, checks: dict[str, Check],
                 alive: Callable[[], str | None] = lambda: None) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                status, body, ctype = owner.answer(self.path.split("?", 1)[0])
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if status == 503:
                    self.send_header("Retry-After", "5")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args) -> None:  # probes every few seconds are not news
                pass

        self.metrics = metrics
        self.checks = checks
        self.alive = alive
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, which never ran otherwise
            self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str) -> tuple[int, bytes, str]:
        if path == "/healthz":
            problem = self.alive()
            return _envelope(503, f"service unavailable: {problem}") if problem else _envelope(200, "ok")
        if path == "/readyz":
            for name, ping in self.checks.items():
                try:
                    ping()
                except Exception as exc:  # noqa: BLE001 - any failure means not ready, and says why
                    return _envelope(503, f"service unavailable: {name}: {exc}")
            return _envelope(200, "ready")
        if path == "/metrics":
            return 200, self.metrics.render(), CONTENT_TYPE
        return _envelope(404, "nothing found")


def _envelope(status: int, text: str) -> tuple[int, bytes, str]:
    key = "body" if status == 200 else "error"
    return status, (json.dumps({"code": status, key: text}) + "\n").encode(), "application/json"
