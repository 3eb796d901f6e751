"""Health of a process: the one readiness check every daemon answers `/readyz` with, and the small
server the workers (which serve no HTTP otherwise) answer `/healthz`, `/readyz` and `/metrics` on."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from services.observe.metrics import CONTENT_TYPE, Metrics
from services.web.envelope import JSON, envelope
from shared.errors import Unavailable

Check = Callable[[], None]
RETRY_AFTER = 5  # seconds a probe is told to wait when a dependency does not answer


def readiness(checks: dict[str, Check]) -> Unavailable | None:
    """The first dependency that does not answer, as `Unavailable` naming it; None when all do.
    Any failure counts, not only `Unavailable`: a probe must say why, never crash."""
    for name, ping in checks.items():
        try:
            ping()
        except Unavailable as exc:
            return Unavailable(f"{name}: {exc}", retry_after=exc.retry_after)
        except Exception as exc:  # noqa: BLE001 - any failure means not ready, and says why
            return Unavailable(f"{name}: {exc}", retry_after=RETRY_AFTER)
    return None


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
                    self.send_header("Retry-After", str(RETRY_AFTER))
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
        return f"{host!s}:{port}"

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
            unready = readiness(self.checks)
            return _envelope(503, f"service unavailable: {unready}") if unready else _envelope(200, "ready")
        if path == "/metrics":
            return 200, self.metrics.render(), CONTENT_TYPE
        return _envelope(404, "nothing found")


def _envelope(status: int, text: str) -> tuple[int, bytes, str]:
    return status, envelope(status, text), JSON
