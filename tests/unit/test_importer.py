"""`profefe import`'s client: parameter encoding as profefe decodes it, files, errors, retries."""
from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.cli import main
from services.importer import (
    Collector,
    ImportArgumentError,
    UploadError,
    encode_labels,
    error_message,
    find_profile_files,
    format_created_at,
    parse_label,
    parse_retry_after,
    upload_query,
)


def profefe_decode_labels(raw_query: str) -> list[tuple[str, str]]:
    """What profefe does with the query: decode it, then split and unescape each key and value
    once more (`labels.go` FromString: split on ',', first '=', trim, QueryUnescape)."""
    labels = urllib.parse.parse_qs(raw_query, keep_blank_values=True)["labels"][0]
    pairs = []
    for chunk in labels.split(","):
        key, _, value = chunk.partition("=")
        key = urllib.parse.unquote_plus(key.strip())
        if key:
            pairs.append((key, urllib.parse.unquote_plus(value.strip())))
    return pairs


@pytest.mark.parametrize(
    "labels",
    [
        [("env", "prod")],
        [("region", "eu-west-1"), ("az", "b")],
        [("version", "1.2+build,7"), ("eq", "a=b=c")],
        [("percent", "100%"), ("escaped", "%2C already")],
        [("spaces", "  two words  "), ("key with space", "x")],
        [("unicode", "z\u00fcrich \u2603"), ("empty", "")],
    ],
)
def test_labels_survive_profefe_double_decoding(labels):
    query = upload_query("svc", "cpu", labels)
    assert profefe_decode_labels(query) == labels


def test_labels_encode_like_the_go_agent():
    # agent.WithLabels: url.QueryEscape(k) + "=" + url.QueryEscape(v), joined by ","
    assert encode_labels([("a b", "1+2,3=4%")]) == "a+b=1%2B2%2C3%3D4%25"
    assert encode_labels([]) == ""


def test_query_carries_service_type_and_created_at():
    query = urllib.parse.parse_qs(
        upload_query("my svc&x", "heap", [("k", "v")], "2024-01-02T03:04:05"), keep_blank_values=True
    )
    assert query == {
        "service": ["my svc&x"],
        "type": ["heap"],
        "labels": ["k=v"],
        "created_at": ["2024-01-02T03:04:05"],
    }


def test_too_many_labels_are_refused():
    with pytest.raises(ImportArgumentError, match="too many labels"):
        encode_labels([(f"k{i}", "v") for i in range(65)])


@pytest.mark.parametrize("text, pair", [("k=v", ("k", "v")), ("k=a=b", ("k", "a=b")), ("k=", ("k", ""))])
def test_parse_label(text, pair):
    assert parse_label(text) == pair


@pytest.mark.parametrize("text", ["novalue", "=v", " =v", ""])
def test_parse_label_refuses(text):
    with pytest.raises(ImportArgumentError, match="KEY=VALUE"):
        parse_label(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-01-02T03:04:05", "2024-01-02T03:04:05"),
        ("2024-01-02T03:04:05.999", "2024-01-02T03:04:05"),
        ("2024-01-02T03:04:05Z", "2024-01-02T03:04:05"),
        ("2024-01-02T05:04:05+02:00", "2024-01-02T03:04:05"),
        ("2024-01-01T23:30:00-04:00", "2024-01-02T03:30:00"),
    ],
)
def test_created_at_is_normalised_to_profefe_utc(text, expected):
    assert format_created_at(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01T00:00:00", ""])
def test_created_at_refuses_non_times(text):
    with pytest.raises(ImportArgumentError, match="created-at"):
        format_created_at(text)


def test_find_profile_files_walks_directories_sorted_and_skips_hidden(tmp_path: Path):
    (tmp_path / "b").mkdir()
    (tmp_path / ".git").mkdir()
    for rel in ["b/2.pb.gz", "b/1.pb.gz", "a.pb.gz", ".hidden", ".git/x"]:
        (tmp_path / rel).write_bytes(GZIP_MAGIC)
    single = tmp_path / "b" / "1.pb.gz"
    found = find_profile_files([tmp_path, single])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a.pb.gz", "b/1.pb.gz", "b/2.pb.gz", "b/1.pb.gz"]


GZIP_MAGIC = b"\x1f\x8b\x08\x00"


def test_find_profile_files_sorts_naturally_and_skips_text(tmp_path: Path):
    for name in ["cpu-10.pb.gz", "cpu-2.pb.gz", "cpu-1.pb.gz"]:
        (tmp_path / name).write_bytes(GZIP_MAGIC)
    (tmp_path / "cpu-1.pb.gz.txt").write_text("PeriodType: cpu nanoseconds\n")
    (tmp_path / "notes.md").write_text("# notes\n")
    (tmp_path / "raw.pb").write_bytes(b"\x0a\x04\x08\x01\x10\x02\x00\xff")  # protobuf, not text
    (tmp_path / "trace.out").write_bytes(b"go 1.22 trace\x00\x00")
    found = [p.name for p in find_profile_files([tmp_path])]
    assert found == ["cpu-1.pb.gz", "cpu-2.pb.gz", "cpu-10.pb.gz", "raw.pb", "trace.out"]
    # A text file named on the command line is still sent: the server says what is wrong with it.
    assert find_profile_files([tmp_path / "notes.md"]) == [tmp_path / "notes.md"]


@pytest.mark.parametrize("url", ["http://h:10100/api/0/profiles", "http://h:10100/api/0/", "http://h/x/api/0/profiles"])
def test_collector_url_naming_the_route_is_refused_with_a_hint(url):
    with pytest.raises(ImportArgumentError, match="base URL, e.g. http://h"):
        Collector(url)


def test_find_profile_files_names_a_missing_path(tmp_path: Path):
    with pytest.raises(ImportArgumentError, match="nope: no such file"):
        find_profile_files([tmp_path / "nope"])


def test_error_message_prefers_the_envelope():
    assert error_message(400, b'{"code":400,"error":"malformed profile (bad magic)"}') == "malformed profile (bad magic)"
    assert error_message(502, b"<html>bad gateway</html>") == "<html>bad gateway</html>"
    assert error_message(503, b"") == "Service Unavailable"


def test_parse_retry_after():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0


def test_collector_refuses_a_non_http_url():
    with pytest.raises(ImportArgumentError, match="not http"):
        Collector("ftp://host")


class ScriptedCollector(http.server.BaseHTTPRequestHandler):
    """Answers each POST with the next (status, headers, body) of `script`; records the requests."""

    protocol_version = "HTTP/1.1"
    script: list[tuple[int, dict[str, str], bytes]] = []
    seen: list[tuple[str, bytes]] = []
    peers: list[tuple[str, int]] = []

    def do_POST(self):  # noqa: N802 (the stdlib's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append((self.path, body))
        self.peers.append(self.client_address)
        status, headers, reply = self.script.pop(0)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted():
    ScriptedCollector.script = []
    ScriptedCollector.seen = []
    ScriptedCollector.peers = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ScriptedCollector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ScriptedCollector, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def ok(profile_id: str) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps({"code": 200, "body": {"id": profile_id}}).encode()


def test_upload_retries_5xx_honouring_retry_after(scripted):
    handler, url = scripted
    handler.script = [
        (503, {"Retry-After": "3"}, b'{"code":503,"error":"kafka unavailable"}'),
        (500, {}, b'{"code":500,"error":"internal server error"}'),
        ok("p1"),
    ]
    waits: list[float] = []
    with Collector(url + "/prefix/", attempts=3, sleep=waits.append) as collector:
        assert collector.upload(b"profile", "service=s&type=cpu&labels=") == {"id": "p1"}
    assert waits == [3.0, 1.0]  # the server's Retry-After, then the second backoff step
    assert [path for path, _ in handler.seen] == ["/prefix/api/0/profiles?service=s&type=cpu&labels="] * 3
    assert all(body == b"profile" for _, body in handler.seen)


def test_upload_gives_up_after_the_last_attempt(scripted):
    handler, url = scripted
    handler.script = [(502, {}, b"")] * 2
    with Collector(url, attempts=2, sleep=lambda s: None) as collector:
        with pytest.raises(UploadError, match="HTTP 502: Bad Gateway") as caught:
            collector.upload(b"x", "service=s&type=cpu")
    assert caught.value.status == 502


def test_upload_does_not_retry_a_4xx(scripted):
    handler, url = scripted
    handler.script = [(400, {}, b'{"code":400,"error":"malformed profile (no samples)"}'), ok("never")]
    with Collector(url, attempts=4, sleep=lambda s: pytest.fail("slept")) as collector:
        with pytest.raises(UploadError, match=r"HTTP 400: malformed profile \(no samples\)"):
            collector.upload(b"x", "service=s&type=cpu")
    assert len(handler.seen) == 1


def test_upload_reuses_one_connection(scripted):
    handler, url = scripted
    handler.script = [ok("a"), ok("b"), ok("c")]
    with Collector(url) as collector:
        for _ in range(3):
            collector.upload(b"x", "service=s&type=cpu")
    assert len(handler.peers) == 3 and len(set(handler.peers)) == 1


def test_upload_retries_a_refused_connection_then_reports_it():
    waits: list[float] = []
    # Port 1 on loopback: nothing listens there, so every attempt is refused.
    with Collector("http://127.0.0.1:1", attempts=3, sleep=waits.append) as collector:
        with pytest.raises(UploadError, match="cannot reach http://127.0.0.1:1") as caught:
            collector.upload(b"x", "service=s&type=cpu")
    assert caught.value.status is None
    assert waits == [0.5, 1.0]


def test_import_command_summarises_and_fails_on_any_refusal(scripted, tmp_path):
    handler, url = scripted
    handler.script = [ok("p1"), (400, {}, b'{"code":400,"error":"malformed profile (no samples)"}')]
    (tmp_path / "a.pb.gz").write_bytes(GZIP_MAGIC + b"first")
    (tmp_path / "b.pb.gz").write_bytes(GZIP_MAGIC + b"second")

    result = CliRunner().invoke(
        main, ["import", "--url", url, "--service", "s", "--type", "cpu", "--label", "k=v w", str(tmp_path)]
    )

    assert result.exit_code == 1
    assert f"uploaded: {tmp_path / 'a.pb.gz'} p1" in result.stdout
    assert f"failed: {tmp_path / 'b.pb.gz'}: HTTP 400: malformed profile (no samples)" in result.stderr
    assert result.stdout.rstrip().endswith("1 uploaded, 1 failed")
    assert [body for _, body in handler.seen] == [GZIP_MAGIC + b"first", GZIP_MAGIC + b"second"]
    assert handler.seen[0][0] == "/api/0/profiles?service=s&type=cpu&labels=k%3Dv%2Bw"


def test_import_command_quiet_prints_nothing_on_success(scripted, tmp_path):
    handler, url = scripted
    handler.script = [ok("p1")]
    (tmp_path / "a.pb.gz").write_bytes(GZIP_MAGIC)
    result = CliRunner().invoke(main, ["import", "-q", "--url", url, "--service", "s", "--type", "heap", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output == ""


def test_import_command_refuses_a_bad_label_before_sending(tmp_path):
    (tmp_path / "a.pb.gz").write_bytes(b"x")
    result = CliRunner().invoke(
        main, ["import", "--url", "http://127.0.0.1:1", "--service", "s", "--type", "cpu", "--label", "oops", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "label 'oops' is not KEY=VALUE" in result.output


def test_import_command_refuses_a_url_that_is_not_http(tmp_path):
    (tmp_path / "a.pb.gz").write_bytes(b"x")
    result = CliRunner().invoke(main, ["import", "--url", "localhost:10100", "--service", "s", "--type", "cpu", str(tmp_path)])
    assert result.exit_code == 2
    assert "is not http(s)://host[:port][/prefix]" in result.output
