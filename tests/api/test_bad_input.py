"""Hostile and broken input: each case answers a clear 4xx with its exact message, stores
nothing it should not, and never costs the server a 5xx, a crash or a hung connection.

Most cases run through the `api` fixture (embedded and distributed); those that need a real
socket (a body that never ends, a client that trickles, what waitress itself refuses) start
`profefe serve` as a subprocess with a short `--read-timeout`.
"""
from __future__ import annotations

import gzip
import os
import re
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.api import pprofs
from tests.api.conftest import EmbeddedApi
from tests.api.helpers import WINDOW, find, upload
from tests.e2e import embedded

# The native decoder's reason: the inner gzip stream is not a protobuf message.
CORRUPT = "malformed profile (protobuf: invalid wire type)"


def assert_error(r, status: int, message: str) -> None:
    assert r.status == status, r.data[:300]
    assert r.headers["Content-Type"] == "application/json"
    assert r.json == {"code": status, "error": message}


# gzip bombs ---------------------------------------------------------------------------------


def test_a_gzip_bomb_inside_a_gzip_is_unwrapped_once_and_refused_as_corrupt(api):
    inner = gzip.compress(b"\x00" * (64 << 20), compresslevel=9)
    nested = gzip.compress(inner, compresslevel=9)
    assert len(nested) < 16 << 10
    assert_error(api.post({"service": "svc", "type": "cpu"}, nested), 400, CORRUPT)


def test_a_gzip_bomb_as_the_raw_body_of_other_is_stopped_at_the_decompression_limit(api_factory):
    api = api_factory(max_decompressed_bytes=1 << 20)
    bomb = gzip.compress(b"\x00" * (256 << 20), compresslevel=9)
    assert len(bomb) < 512 << 10
    assert_error(api.post({"service": "svc", "type": "other"}, bomb), 413,
                 "profile too large: over 1048576 bytes once decompressed")


def test_a_bomb_over_the_default_limit_is_refused_with_the_default(api):
    bomb = gzip.compress(b"\x00" * (80 << 20), compresslevel=9)
    assert_error(api.post({"service": "svc", "type": "heap"}, bomb), 413,
                 f"profile too large: over {64 << 20} bytes once decompressed")


# Label lists ----------------------------------------------------------------------------------

TEN_THOUSAND = ",".join(f"k{i}=v{i}" for i in range(10_000))


def test_ten_thousand_labels_on_an_upload(api):
    assert_error(api.post({"service": "svc", "type": "cpu", "labels": TEN_THOUSAND}, pprofs.cpu()), 400,
                 "bad request: more than 64 labels")


def test_ten_thousand_labels_on_a_find(api):
    upload(api)
    assert_error(find(api, service="svc", labels=TEN_THOUSAND), 400, "bad request: more than 64 labels")


def test_ten_thousand_labels_on_a_merge(api):
    upload(api)
    assert_error(api.get("/api/0/profiles/merge", {**WINDOW, "service": "svc", "type": "cpu",
                                                   "labels": TEN_THOUSAND}),
                 400, "bad request: more than 64 labels")


def test_a_find_with_many_labels_below_the_limit_runs(api):
    upload(api, labels="k0=v0")
    many = ",".join(f"k{i}=v{i}" for i in range(64))
    assert_error(find(api, service="svc", labels=many), 404, "nothing found")


@pytest.fixture
def in_process(tmp_path):
    """The embedded app in-process: a 1 MiB query string is over waitress's header limit, so only
    here does the app itself read one (test_a_1_mib_url_over_a_socket covers the real server)."""
    api = EmbeddedApi(tmp_path / "data")
    yield api
    api.close()


def test_a_1_mib_label_value_on_an_upload(in_process):
    api = in_process
    labels = "a=" + "x" * (1 << 20)
    assert_error(api.post({"service": "svc", "type": "cpu", "labels": labels}, pprofs.cpu()), 400,
                 "bad request: value of label 'a' is longer than 1024 characters")


def test_a_1_mib_labels_param_with_a_bad_escape_is_not_echoed_whole(in_process):
    api = in_process
    labels = "%zz" + "x" * (1 << 20)
    shown = '"' + labels[:256] + '"...'
    for r in (api.post({"service": "svc", "type": "cpu", "labels": labels}, pprofs.cpu()),
              find(api, service="svc", labels=labels)):
        assert_error(r, 400, f'bad request: bad "labels" {shown}: invalid URL escape "%zz"')
        assert len(r.data) < 1024


@pytest.mark.parametrize("labels", ["=", ",,,", "=,=v,  ,", ",=,"])
def test_label_lists_without_a_key_store_no_labels(api, labels):
    body = upload(api, labels=labels)
    assert "labels" not in body
    assert [p["id"] for p in find(api, service="svc", labels=labels).body] == [body["id"]]


def test_a_bad_escape_in_labels(api):
    # `%zz` reaches the app as it was sent: the query string decoder leaves a bad escape alone.
    r = api.post("service=svc&type=cpu&labels=%zz", pprofs.cpu())
    assert_error(r, 400, 'bad request: bad "labels" "%zz": invalid URL escape "%zz"')
    assert_error(api.get("/api/0/profiles", "service=svc&labels=k=%zz&" + "&".join(f"{k}={v}" for k, v in WINDOW.items())),
                 400, 'bad request: bad "labels" "k=%zz": invalid URL escape "%zz"')


# Invalid UTF-8 and control characters ---------------------------------------------------------------

NOT_UTF8_QUERY = "bad request: the query string is not valid UTF-8"


def test_a_service_that_is_not_utf8(api):
    assert_error(api.post("service=%ff%fe&type=cpu", pprofs.cpu()), 400, NOT_UTF8_QUERY)
    assert_error(api.get("/api/0/profiles", "service=%c3%28&from=2020-01-01T00:00:00&to=2030-01-01T00:00:00"),
                 400, NOT_UTF8_QUERY)


def test_labels_that_are_not_utf8_in_the_query_string(api):
    assert_error(api.post("service=svc&type=cpu&labels=k=%ff", pprofs.cpu()), 400, NOT_UTF8_QUERY)


def test_labels_that_are_not_utf8_once_decoded_again(api):
    assert_error(api.post("service=svc&type=cpu&labels=k=%25ff", pprofs.cpu()), 400,
                 'bad request: bad "labels" "k=%ff": not valid UTF-8 once decoded')


@pytest.mark.parametrize("labels", ["k=a\x00b", "k\x00=v", "k=line\nbreak", "k=\x1b[31mred"])
def test_control_characters_in_labels_are_refused_on_upload_and_find(api, labels):
    assert_error(api.post({"service": "svc", "type": "cpu", "labels": labels}, pprofs.cpu()), 400,
                 'bad request: "labels" contain control characters')
    assert_error(find(api, service="svc", labels=labels), 400, 'bad request: "labels" contain control characters')


@pytest.mark.parametrize("service", ["a\x00b", "tab\there", "\x7fdel"])
def test_control_characters_in_a_find_service_are_refused(api, service):
    assert_error(find(api, service=service), 400, 'bad request: "service" contains control characters')


@pytest.mark.parametrize("raw, shown", [("a%00b", "a\x00b"), ("%01", "\x01")])
def test_control_characters_in_an_id_are_an_unknown_id(api, raw, shown):
    assert_error(api.get(f"/api/0/profiles/{raw}"), 404, f'nothing found: no profile with id "{shown}"')


def test_a_huge_unknown_id_is_not_echoed_whole(api):
    r = api.get("/api/0/profiles/" + "a" * 10_000)
    assert_error(r, 404, f'nothing found: no profile with id "{"a" * 64}..."')


# Path tricks --------------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["../etc", "../../../../tmp/x", "/etc/passwd", "..\\..\\windows", "./."])
def test_a_path_as_a_service_is_just_a_name(api, service):
    body = upload(api, service=service)
    assert body["service"] == service
    assert [p["id"] for p in find(api, service=service).body] == [body["id"]]
    assert api.get(f"/api/0/profiles/{body['id']}").data == pprofs.cpu()


def test_a_percent_encoded_path_as_a_service_is_decoded_once(api):
    body = upload(api, service="%2e%2e%2f")
    assert body["service"] == "%2e%2e%2f"  # urlencode sent %252e...: one decode leaves the escapes
    r = api.post("service=%2e%2e%2f&type=cpu", pprofs.cpu())
    assert r.status == 200 and r.body["service"] == "../"


@pytest.mark.parametrize("path", [
    "/api/0/profiles/..%2f..%2fetc%2fpasswd",
    "/api/0/profiles/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/api/0/profiles//etc/passwd",
    "/api/0/profiles/%2fetc%2fpasswd",
])
def test_a_path_as_an_id_matches_no_route(api, path):
    assert_error(api.get(path), 404, "nothing found")


@pytest.mark.parametrize("ids, named", [("..", ".."), ("%2e%2e", ".."), ("a+..+b", "a"), ("...", "...")])
def test_dots_as_an_id_are_an_unknown_id(api, ids, named):
    assert_error(api.get(f"/api/0/profiles/{ids}"), 404, f'nothing found: no profile with id "{named}"')


# SQL metacharacters ---------------------------------------------------------------------------------

SQL = "' OR 1=1 --"


def test_sql_in_a_service_is_stored_as_a_name_and_matches_only_itself(api):
    upload(api, service="svc")
    body = upload(api, service=SQL)
    assert body["service"] == SQL
    assert [p["id"] for p in find(api, service=SQL).body] == [body["id"]]
    assert_error(find(api, service="x' OR '1'='1"), 404, "nothing found")
    assert_error(api.get("/api/0/profiles/merge", {**WINDOW, "service": "svc' --", "type": "cpu"}), 404, "nothing found")


def test_sql_in_labels_finds_nothing(api):
    upload(api, labels="k=v")
    assert_error(find(api, service="svc", labels=f"k={quote(SQL)}"), 404, "nothing found")
    assert_error(find(api, service="svc", labels=f"{quote(SQL)}=v"), 404, "nothing found")


def test_sql_in_an_id_is_an_unknown_id(api):
    upload(api)
    assert_error(api.get("/api/0/profiles/" + quote("x' OR 1=1 --")), 404, "nothing found: no profile with id \"x'\"")
    assert_error(api.get("/api/0/profiles/" + quote("';DROP TABLE profiles;--")), 404,
                 "nothing found: no profile with id \"';DROP\"")  # a space splits ids, as `+` does
    assert len(find(api, service="svc").body) == 1


# Over a real socket: `profefe serve` with a short read timeout --------------------------------------

READ_TIMEOUT = 2


@pytest.fixture(scope="module")
def serve_addr(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad-input")
    port = embedded.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROFEFE_")}
    log_path = tmp / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([*embedded.profefe_command(), "serve", "--addr", f"127.0.0.1:{port}",
                                 "--data-dir", str(tmp / "data"), "--compact-interval", "0",
                                 "--read-timeout", str(READ_TIMEOUT)],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            embedded._wait_until_up(proc, f"http://127.0.0.1:{port}", log_path)
            yield ("127.0.0.1", port), log_path
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert proc.returncode == 0, Path(log_path).read_text()


def exchange(addr, request: bytes, wait: float = 30.0) -> bytes:
    """Send `request`, return everything the server sends until it closes (or `wait` passes)."""
    with socket.create_connection(addr, timeout=wait) as s:
        s.sendall(request)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except ConnectionResetError:
            pass  # the server answered early and closed while we were still sending
        return out


def still_serving(addr) -> None:
    reply = exchange(addr, b"GET /api/0/version HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]


@pytest.mark.e2e
def test_a_body_that_ends_early_is_closed_after_the_read_timeout(serve_addr):
    addr, log_path = serve_addr
    head = b"POST /api/0/profiles?service=svc&type=cpu HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n"
    with socket.create_connection(addr, timeout=READ_TIMEOUT * 10) as s:
        s.sendall(head + pprofs.cpu()[:10])
        assert s.recv(4096) == b""  # closed, not answered, and not hanging: recv would time out
    logged(log_path, "took over 2s to arrive")
    still_serving(addr)


def logged(log_path, text: str, within: float = 2.0) -> None:
    """`text` is in the log within `within` seconds (the native server reports the connections it
    closed to the thread that logs, at its next turn)."""
    deadline = time.monotonic() + within
    while text not in log_path.read_text():
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{log_path.read_text()}"
        time.sleep(0.05)


@pytest.mark.e2e
def test_a_client_that_trickles_its_body_is_cut_off(serve_addr):
    addr, _ = serve_addr
    body = pprofs.cpu()
    head = (f"POST /api/0/profiles?service=svc&type=cpu HTTP/1.1\r\nHost: t\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    sent = 0
    with socket.create_connection(addr, timeout=READ_TIMEOUT * 10) as s:
        s.sendall(head)
        with pytest.raises(OSError):  # the server closed: a reset on a later send, or an EOF below
            for byte in body:  # one byte every 0.25 s: the whole body would take far longer than 2 s
                s.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.25)
                if sent % 4 == 0:
                    s.setblocking(False)
                    try:
                        if s.recv(1) == b"":
                            raise ConnectionResetError("closed by the server")
                    except BlockingIOError:
                        pass
                    finally:
                        s.setblocking(True)
                        s.settimeout(READ_TIMEOUT * 10)
    assert sent < len(body)
    still_serving(addr)


@pytest.mark.e2e
def test_trickled_headers_are_cut_off_too(serve_addr):
    addr, _ = serve_addr
    with socket.create_connection(addr, timeout=READ_TIMEOUT * 10) as s:
        s.sendall(b"GET /api/0/version HTTP/1.1\r\nHost: t\r\n")
        for _ in range(4 * READ_TIMEOUT + 8):
            try:
                s.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
            time.sleep(0.5)
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    break
            except BlockingIOError:
                pass
            except OSError:
                break
            finally:
                s.setblocking(True)
        else:
            pytest.fail("the server kept reading trickled headers")
    still_serving(addr)


@pytest.mark.e2e
def test_a_path_that_is_not_utf8_over_a_socket(serve_addr):
    addr, _ = serve_addr
    reply = exchange(addr, b"GET /api/0/profiles/%ff%fe HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400")
    assert reply.endswith(b'{"code": 400, "error": "bad request: the path is not valid UTF-8"}\n')


@pytest.mark.e2e
def test_a_url_over_64_kib_is_refused_by_the_native_server(serve_addr):
    addr, _ = serve_addr
    target = b"/api/0/profiles?service=svc&type=cpu&labels=a=" + b"x" * 70_000
    reply = exchange(addr, b"POST " + target + b" HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
    # hyper's own answer, empty: its URIs hold at most 65,534 bytes (waitress took up to 256 KiB).
    assert reply.startswith(b"HTTP/1.1 414 "), reply[:200]
    still_serving(addr)


@pytest.mark.e2e
def test_a_1_mib_url_over_a_socket_is_refused_by_the_server(serve_addr):
    addr, _ = serve_addr
    target = b"/api/0/profiles?service=svc&labels=a=" + b"x" * (1 << 20)
    try:
        reply = exchange(addr, b"GET " + target + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        reply = b""  # refused and closed before the whole request was even sent
    # The server's own answer (plain text, not the envelope): its header limit is 256 KiB.
    assert reply == b"" or re.match(rb"HTTP/1\.[01] 431 ", reply), reply[:200]
    still_serving(addr)
