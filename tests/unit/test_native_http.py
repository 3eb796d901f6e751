"""The native HTTP server (`shared.pprof._native.HttpServer`) on its own: what reaches Python, how
a request left unanswered or sent too slowly ends, and its stop. serve's answers under it are
compared with waitress's in tests/e2e/test_serve_http_servers.py."""
from __future__ import annotations

import gc
import http.client
import json
import socket
import threading
import time
from typing import Callable, Iterator

import pytest

from services.process import prefork
from services.process.native_http import environ
from shared import pprof
from shared.pprof._native import HttpServer
from tests.api import pprofs

FAST = "/fast"
LIMIT = 64 << 10


def start(read_timeout: float, *fast: object) -> tuple[HttpServer, int]:
    """A server on a free loopback port; `fast`: its fast path and check limit."""
    sock = prefork.listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    srv = HttpServer(sock.fileno(), LIMIT, read_timeout, *fast)
    sock.close()  # the server has its own copy
    return srv, port


@pytest.fixture
def server() -> Iterator[tuple[HttpServer, int]]:
    srv, port = start(1.0, FAST, 1 << 20, 2)
    yield srv, port
    stop(srv, 1.0)


def stop(srv: HttpServer, drain: float) -> bool:
    srv.shutdown(drain)
    while (drained := srv.wait(0.1)) is None:
        pass
    return drained


def answering(srv: HttpServer, reply: Callable) -> threading.Thread:
    """A thread that answers the first request of the WSGI queue with `reply(req)`."""
    def run() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            req = srv.take(0.1)
            if req is not None:
                reply(req)
                return
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, names: list[str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers by lower-case name, body); the header names as sent go into `names`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        if names is not None:
            names.extend(k for k, _ in resp.getheaders())
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_a_request_reaches_python_whole_and_the_answer_goes_back(server):
    srv, port = server
    seen = {}

    def reply(req) -> None:
        seen.update(method=req.method, path=req.path, query=req.query, body=req.body, headers=req.headers,
                    over=req.over, length=req.content_length, env=environ(req, {"SERVER_NAME": "h"}))
        req.answer(201, [("Content-Type", "text/plain"), ("X-One", "1"), ("Connection", "close")], b"made")

    t = answering(srv, reply)
    seen["sent_names"] = []
    status, headers, body = request(port, "PUT", "/a%20b/c?x=1&y=%C3%A9", b"hello", {"X-Two": "caf\u00e9", "X_Two": "spoof"},
                                    names=seen["sent_names"])
    t.join()
    assert (status, body, headers["x-one"], headers["server"]) == (201, b"made", "1", "profefe")
    assert {"Content-Length", "X-One", "Server"} <= set(seen["sent_names"])  # as waitress and Go write them
    assert seen["method"] == "PUT" and seen["path"] == "/a%20b/c" and seen["query"] == "x=1&y=%C3%A9"
    assert (seen["body"], seen["over"], seen["length"]) == (b"hello", False, 5)
    assert ("x-two", "caf\u00e9") in seen["headers"]  # each byte one character, as WSGI wants
    env = seen["env"]
    assert (env["PATH_INFO"], env["QUERY_STRING"], env["HTTP_X_TWO"]) == ("/a b/c", "x=1&y=%C3%A9", "caf\u00e9")
    assert (env["CONTENT_LENGTH"], env["wsgi.input"].read()) == ("5", b"hello")
    assert ("x_two", "spoof") in seen["headers"] and "spoof" not in env.values()  # dropped, as waitress does


def test_posts_to_the_fast_path_come_in_batches_with_their_bodies_checked(server):
    srv, port = server
    body = pprofs.cpu()
    results: list[tuple[int, bytes]] = []
    threads = [threading.Thread(target=lambda: results.append(request(port, "POST", FAST, body)[::2]))
               for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # all eight read and queued before any is taken
    batch = srv.take_batch(64, 1.0)
    assert len(batch) == 8
    assert srv.take(0.05) is None  # none of them went to the other queue
    expected = pprof.check(body, max_decompressed=1 << 20)
    for req in batch:
        assert pprof.Checked.from_native(req.checked()) == expected
        assert req.checked() is None  # given once
        req.answer(200, [], b"ok")
    for t in threads:
        t.join()
    assert results == [(200, b"ok")] * 8


def test_a_body_the_check_refuses_raises_its_error_when_asked(server):
    srv, port = server
    t = threading.Thread(target=request, args=(port, "POST", FAST, b"not a profile"), daemon=True)
    t.start()
    (req,) = srv.take_batch(1, 5.0)
    with pytest.raises(pprof.MalformedProfile):
        req.checked()
    req.answer(400, [], b"")
    t.join()


def test_a_get_on_the_fast_path_goes_to_the_other_queue(server):
    srv, port = server
    t = answering(srv, lambda r: r.answer(204, [], b""))
    assert request(port, "GET", FAST)[0] == 204
    t.join()


def test_a_request_dropped_unanswered_is_a_500(server):
    srv, port = server

    def drop(req) -> None:
        del req
        gc.collect()

    t = answering(srv, drop)
    status, headers, body = request(port, "GET", "/x")
    t.join()
    assert status == 500 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"code": 500, "error": "internal error"}


def test_a_second_answer_is_refused():
    srv, port = start(1.0)
    outcomes = []

    def reply(req) -> None:
        outcomes.append(req.answer(200, [], b"first"))
        outcomes.append(req.answer(200, [], b"second"))
        with pytest.raises(ValueError):
            req.answer(42, [], b"")

    t = answering(srv, reply)
    assert request(port, "GET", "/")[2] == b"first"
    t.join()
    assert outcomes == [True, False]
    assert stop(srv, 1.0)


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_limit_is_not_read_and_flagged(server, chunked):
    srv, port = server
    big = b"x" * (LIMIT + 1)
    seen = {}

    def reply(req) -> None:
        seen.update(over=req.over, body=req.body, length=req.content_length)
        req.answer(413, [], b"too large")

    t = answering(srv, reply)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    if chunked:
        conn.request("PUT", "/", body=iter([big[:LIMIT // 2], big[LIMIT // 2:]]), encode_chunked=True)
    else:
        conn.request("PUT", "/", body=big)
    assert conn.getresponse().status == 413
    conn.close()
    t.join()
    assert seen == {"over": True, "body": b"", "length": None if chunked else LIMIT + 1}


def test_a_body_that_stops_coming_closes_the_connection_and_is_reported(server):
    srv, port = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
        assert s.recv(100) == b""  # closed after the 1 s read timeout, unanswered
    assert srv.slow_clients() == ["127.0.0.1"]
    assert srv.take(0.05) is None


def test_stop_waits_for_the_request_in_hand_then_refuses_connections():
    srv, port = start(5.0)
    answers = []
    client = threading.Thread(target=lambda: answers.append(request(port, "GET", "/slow")), daemon=True)
    client.start()
    req = None
    while req is None:
        req = srv.take(1.0)

    def late() -> None:
        time.sleep(0.5)
        req.answer(200, [], b"done")

    threading.Thread(target=late, daemon=True).start()
    assert stop(srv, 10.0)  # returns once the request in hand is answered
    client.join()
    assert answers[0][0::2] == (200, b"done")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_stop_gives_up_after_the_drain_time():
    srv, port = start(5.0)
    outcome = []

    def never() -> None:
        with pytest.raises(http.client.RemoteDisconnected):  # closed unanswered when the drain ends
            request(port, "GET", "/never")
        outcome.append("closed")

    client = threading.Thread(target=never, daemon=True)
    client.start()
    held = None
    while held is None:
        held = srv.take(1.0)
    started = time.monotonic()
    assert stop(srv, 0.5) is False
    assert time.monotonic() - started < 5
    client.join(5)
    assert outcome == ["closed"]
    assert held.answer(200, [], b"") is False


def test_past_100_connections_the_next_one_waits_until_one_closes(server):
    srv, port = server
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(100)]
    try:
        time.sleep(0.3)  # all accepted
        late = socket.create_connection(("127.0.0.1", port), timeout=5)  # into the listen backlog
        late.sendall(b"GET /late HTTP/1.1\r\nHost: t\r\n\r\n")
        assert srv.take(0.5) is None  # not read: its connection is not accepted yet
        held.pop().close()
        req = srv.take(5.0)
        assert req is not None and req.path == "/late"
        req.answer(204, [], b"")
        assert late.recv(100).startswith(b"HTTP/1.1 204 ")
        late.close()
    finally:
        for s in held:
            s.close()
