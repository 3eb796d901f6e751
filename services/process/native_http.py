"""Running a WSGI app under the native HTTP server (`shared.pprof._native.HttpServer`) until
SIGTERM/SIGINT: `serve --http native`.

The server reads each request whole in Rust, on threads of its own, and queues it. Here
`threads` Python threads take the requests one at a time and run the app on each; when a
`batch` handler is given, one more thread takes the requests of its path (POST only) in
batches, so a burst of uploads wakes one thread, not one per upload. The first signal stops
accepting (the socket is closed), waits up to `drain_timeout` for every request in hand to be
answered, and returns; a second one exits at once, as under waitress.
"""
from __future__ import annotations

import io
import logging
import socket
import sys
import threading
from typing import Any, Callable, Iterable
from urllib.parse import unquote_to_bytes

from services.process import prefork
from services.process.runner import DRAIN_TIMEOUT
from services.process.signals import EXIT_OK, drain_then_exit
from services.web.envelope import JSON, envelope
from shared.pprof._native import HttpServer, PendingRequest

log = logging.getLogger(__name__)

RUNTIME_THREADS = 2  # the server's own: one per core of the machines profefe-py is sized for
BATCH = 64  # requests the batch thread takes at once
_TAKE_WAIT = 0.2  # seconds between two looks of the main thread at a signal and the slow clients
_IDLE_WAIT = 1.0  # seconds an idle request thread waits for a request: how late it notices the stop

# A batch handler answers each request of a batch itself (`PendingRequest.answer`).
BatchHandler = Callable[[list[PendingRequest]], None]
# (path, handler, the decompression limit of the body's pprof check, or None for no check)
Batch = tuple[str, BatchHandler, "int | None"]


def serve(app: Any, host: str, port: int, *, threads: int, read_timeout: float, max_body: int,
          on_ready: Callable[[str], None] | None = None, drain_timeout: float = DRAIN_TIMEOUT,
          sock: socket.socket | None = None, batch: Batch | None = None) -> int:
    """Serve `app` on host:port, or on `sock` when given (a listening socket shared by workers);
    POSTs to `batch`'s path go to its handler instead, their bodies checked as pprof (within
    its limit, once inflated) on the server's threads first when it gives one."""
    inherited = sock is not None
    if sock is None:
        sock = prefork.listen(host, port)
    where = "%s:%d" % sock.getsockname()[:2]
    fast_path, handle, check_limit = batch if batch is not None else (None, None, None)
    base = {"SERVER_NAME": host, "SERVER_PORT": str(port), "wsgi.multiprocess": inherited}
    stopping = threading.Event()
    done = threading.Event()
    # The signals are ours before the first request is answered: a SIGTERM right after, from a
    # supervisor that saw the server answer, is a drain, not Python's default exit.
    with drain_then_exit(stopping.set, stopping.is_set, "the requests in hand"):
        server = HttpServer(sock.fileno(), max_body, read_timeout, fast_path, check_limit, RUNTIME_THREADS)
        sock.close()  # the server holds its own copy; closing it there is what refuses new connections
        workers = [threading.Thread(target=_run_requests, args=(server, app, base, done), name=f"http-{i}",
                                    daemon=True) for i in range(threads)]
        if handle is not None:
            workers.append(threading.Thread(target=_run_batches, args=(server, handle, done), name="http-batch",
                                            daemon=True))
        try:
            for t in workers:
                t.start()
            if on_ready is not None:
                on_ready(where)
            while not stopping.wait(_TAKE_WAIT):
                _log_slow(server, read_timeout)
            server.shutdown(drain_timeout)
            while (drained := server.wait(_TAKE_WAIT)) is None:
                pass  # a second signal is taken between two waits
            if not drained:
                log.warning("requests still in flight after %.0fs; closing them", drain_timeout)
        finally:
            done.set()
            for t in workers:
                t.join(timeout=5)
    return EXIT_OK


def _log_slow(server: HttpServer, read_timeout: float) -> None:
    for remote in server.slow_clients():
        log.warning("closing a connection from %s: its request took over %.0fs to arrive", remote, read_timeout)


def _run_requests(server: HttpServer, app: Any, base: dict[str, Any], done: threading.Event) -> None:
    while not done.is_set():
        req = server.take(_IDLE_WAIT)
        if req is None:
            continue
        try:
            run_wsgi(app, req, base)
        except Exception as exc:  # noqa: BLE001 - one bad answer must not take a thread away
            log.error("unexpected error", exc_info=exc)
            answer_error(req, 500, "internal error")


def _run_batches(server: HttpServer, handle: BatchHandler, done: threading.Event) -> None:
    while not done.is_set():
        batch = server.take_batch(BATCH, _IDLE_WAIT)
        if not batch:
            continue
        try:
            handle(batch)
        except Exception as exc:  # noqa: BLE001 - a handler's bug must not stop the thread
            log.error("unexpected error", exc_info=exc)
            for req in batch:
                answer_error(req, 500, "internal error")  # refused where one was answered already


def answer_error(req: PendingRequest, status: int, message: str, headers: Iterable[tuple[str, str]] = ()) -> None:
    req.answer(status, [("Content-Type", JSON), *headers], envelope(status, message))


def environ(req: PendingRequest, base: dict[str, Any]) -> dict[str, Any]:
    """The WSGI environ of `req`, as waitress builds it."""
    env: dict[str, Any] = {
        "REQUEST_METHOD": req.method,
        "SCRIPT_NAME": "",
        # The decoded path's bytes, each as one character (PEP 3333).
        "PATH_INFO": unquote_to_bytes(req.path).decode("latin-1"),
        "QUERY_STRING": req.query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": "profefe",
        "REMOTE_ADDR": req.remote_addr,
        "REMOTE_HOST": req.remote_addr,
        "REMOTE_PORT": str(req.remote_port),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(req.body),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.run_once": False,
        **base,
    }
    for name, value in req.headers:
        if "_" in name:
            continue  # as waitress: X_Forwarded_For would pass for X-Forwarded-For once in the environ
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            env[key] = value
            continue
        key = "HTTP_" + key
        env[key] = f"{env[key]}, {value}" if key in env else value
    if req.over:
        # Not read: the app sees a length over its limit, so it refuses the body (413) unread.
        env["CONTENT_LENGTH"] = str(req.content_length if req.content_length is not None else sys.maxsize)
    elif "CONTENT_LENGTH" not in env:
        env["CONTENT_LENGTH"] = str(len(req.body))
    return env


def run_wsgi(app: Any, req: PendingRequest, base: dict[str, Any]) -> None:
    """Runs `app` on `req` and sends what it answers."""
    started: list[Any] = []
    chunks: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [status, headers]
        return chunks.append

    try:
        result = app(environ(req, base), start_response)
        try:
            for chunk in result:
                if chunk:
                    chunks.append(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if not started:
            raise RuntimeError("the app returned without calling start_response")
    except Exception as exc:  # noqa: BLE001 - the app's own errors are answered inside it; this is a bug
        log.error("unexpected error", exc_info=exc)
        answer_error(req, 500, "internal error")
        return
    status, headers = started
    req.answer(int(status[:3]), headers, b"".join(chunks))
