"""Running a WSGI app under waitress until SIGTERM/SIGINT, and the exit codes of every daemon.

The first signal stops accepting (the listening socket is closed, so a load balancer sees a
refused connection, not a hang), then keeps the loop turning until every request already read
has been answered and its response flushed, at most `drain_timeout` seconds; then it returns.
A second signal exits at once.

waitress's own stop (SystemExit inside its loop) ends the loop first and closes every channel
after: a handler that finished in that window had its response dropped, so an upload Kafka had
acknowledged looked failed to its agent. Hence the loop is run here, one turn at a time.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any, Callable, Protocol

from services.process.signals import EXIT_OK, drain_then_exit

log = logging.getLogger(__name__)

DRAIN_TIMEOUT = 25.0  # below Kubernetes' default 30 s grace period
_TURN = 0.2  # seconds one loop turn may wait: how late a signal is noticed
# Bytes one read from a connection may take: waitress's 8 KiB took a 20-60 KB upload in 3 to 8
# turns of the loop, each a poll over every connection, under the GIL the handlers want.
RECV_BYTES = 64 << 10


def serve(app: Any, host: str, port: int, *, threads: int, read_timeout: float,
          on_ready: Callable[[str], None] | None = None, drain_timeout: float = DRAIN_TIMEOUT,
          sock: socket.socket | None = None) -> int:
    """Serve `app` on host:port, or on `sock` when given (a listening socket shared by workers)."""
    from waitress import wasyncore
    from waitress.server import create_server

    options = {"threads": threads, "ident": "profefe", "recv_bytes": RECV_BYTES}
    if sock is not None:
        server = create_server(app, sockets=[sock], **options)
    else:
        server = create_server(app, host=host, port=port, **options)
    channels = getattr(server, "map", None) or server._map  # several sockets keep theirs in `map`
    stopping = threading.Event()
    deadlines = ReadDeadline(read_timeout)

    def turn() -> None:
        wasyncore.loop(timeout=_TURN, map=channels, use_poll=server.adj.asyncore_use_poll, count=1)
        deadlines.enforce(channels)

    with drain_then_exit(stopping.set, stopping.is_set, "the requests in hand"):
        try:
            _serve_until_stopped(server, channels, stopping, turn, on_ready, drain_timeout)
        finally:
            server.task_dispatcher.shutdown()
            wasyncore.close_all(channels)
    return EXIT_OK


def _serve_until_stopped(server: Any, channels: dict[int, Any], stopping: threading.Event, turn: Callable[[], None],
                         on_ready: Callable[[str], None] | None, drain_timeout: float) -> None:
    if on_ready is not None:
        on_ready(_listening(server))
    while not stopping.is_set():
        turn()
    _stop_accepting(channels)
    deadline = time.monotonic() + drain_timeout
    while _close_idle(channels) and time.monotonic() < deadline:
        turn()
    if _close_idle(channels):
        log.warning("requests still in flight after %.0fs; closing them", drain_timeout)


class ReadDeadline:
    """Closes a connection whose current request has been arriving for longer than `timeout`.

    waitress only times out a connection that sends nothing at all (`channel_timeout`, checked
    every `cleanup_interval`): a client that declared more body than it sends, or trickles a
    byte a second, would hold a connection, and with enough of them the server, for ever.
    Timing the whole read of each request covers both. The client sees the connection closed.
    """

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        if timeout <= 0:
            raise ValueError(f"read timeout must be positive, got {timeout}")
        self.timeout = timeout
        self._clock = clock
        self._reading: dict[int, tuple[object, float]] = {}  # channel id -> (request being read, since)
        self._next_check = 0.0

    def enforce(self, channels) -> None:
        now = self._clock()
        if now < self._next_check:  # the loop turns once per socket event: most turns stop here
            return
        from waitress.channel import HTTPChannel

        self._next_check = now + min(1.0, self.timeout / 4)
        seen = {}
        for ch in [c for c in list(channels.values()) if isinstance(c, HTTPChannel)]:
            if ch.request is None:  # idle, or the request read whole and handed over
                continue
            held, since = self._reading.get(id(ch), (None, now))
            if held is not ch.request:
                since = now
            if now - since > self.timeout:
                log.warning("closing a connection from %s: its request took over %.0fs to arrive",
                            ch.addr[0] if ch.addr else "?", self.timeout)
                ch.handle_close()
                continue
            seen[id(ch)] = (ch.request, since)
        self._reading = seen


def _stop_accepting(channels) -> None:
    from waitress.server import BaseWSGIServer

    for listener in [c for c in list(channels.values()) if isinstance(c, BaseWSGIServer)]:
        listener.accepting = False
        listener.del_channel()
        listener.socket.close()


def _close_idle(channels) -> int:
    """Close every connection with nothing in hand (a keep-alive client then goes elsewhere
    rather than sending more into a server that is leaving); returns how many are still busy:
    a request being read, waiting for or in its handler, or its response not sent yet."""
    from waitress.channel import HTTPChannel

    busy = 0
    for ch in [c for c in list(channels.values()) if isinstance(c, HTTPChannel)]:
        if ch.requests or ch.request is not None or ch.total_outbufs_len:
            busy += 1
        else:
            ch.handle_close()
    return busy


def _listening(server) -> str:
    try:
        host, port = server.socket.getsockname()[:2]
    except AttributeError:  # several sockets
        return ", ".join(f"{h}:{p}" for h, p in (s.socket.getsockname()[:2] for s in server.servers))
    return f"{host}:{port}"


class Loop(Protocol):
    """A worker loop: `run` until `stop` is called; `stopping` once it was."""

    @property
    def stopping(self) -> bool: ...

    def run(self) -> None: ...

    def stop(self) -> None: ...


def run_until_signalled(loop: Loop, finishing: str) -> int:
    """Run `loop` in this (main) thread: the first SIGTERM/SIGINT asks it to stop after
    `finishing` (what it has in hand); a second one exits at once."""
    with drain_then_exit(loop.stop, lambda: loop.stopping, finishing):
        loop.run()
    return EXIT_OK
