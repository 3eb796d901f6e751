"""Running a WSGI app under waitress until SIGTERM/SIGINT.

The first signal stops accepting, lets in-flight requests finish (waitress drains its task
queue) and returns; a second signal exits at once.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Callable

from waitress.server import create_server

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FORCED = 130


def serve(app, host: str, port: int, *, threads: int = 8, on_ready: Callable[[str], None] | None = None) -> int:
    server = create_server(app, host=host, port=port, threads=threads, ident="profefe")
    stopping = threading.Event()

    def stop(signum, _frame) -> None:
        if stopping.is_set():
            log.warning("second signal %s: exiting now", signal.Signals(signum).name)
            os._exit(EXIT_FORCED)
        stopping.set()
        log.info("signal %s: stopping", signal.Signals(signum).name)
        # waitress's loop ends on SystemExit/KeyboardInterrupt and then drains its workers.
        raise SystemExit(EXIT_OK)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        if on_ready is not None:
            on_ready(_listening(server))
        try:
            server.run()
        except SystemExit:
            pass
    finally:
        server.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return EXIT_OK


def _listening(server) -> str:
    try:
        host, port = server.socket.getsockname()[:2]
    except AttributeError:  # several sockets
        return ", ".join(f"{h}:{p}" for h, p in (s.socket.getsockname()[:2] for s in server.servers))
    return f"{host}:{port}"
