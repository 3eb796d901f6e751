"""Bearer tokens through HTTP: the embedded app, the ingest-api and query-api apps, and
`profefe serve` + `profefe import --token` as real processes. Off by default, on when configured."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from services import wiring
from services.web.auth import AuthConfig
from services.roles import IngestApiRole, QueryApiRole, ServeRole
from shared.adapters.queue_kafka import KafkaSettings
from tests.api import pprofs
from tests.api.helpers import WINDOW
from tests.e2e import embedded

WRITE, READ, BOTH_WAYS = "write-token-1", "read-token-1", "both-token"
AUTH = AuthConfig(ingest_tokens=(WRITE, BOTH_WAYS), read_tokens=(READ, BOTH_WAYS))
UPLOAD = "/api/0/profiles?service=svc&type=cpu"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def serve_app(tmp_path):
    def make(auth: AuthConfig):
        cfg = ServeRole(data_dir=tmp_path / f"data{len(opened)}", auth=auth)
        opened.append(wiring.open_embedded(cfg))
        return wiring.embedded_app(opened[-1], cfg).test_client()

    opened: list = []
    yield make
    for ports in opened:
        ports.close()


def assert_unauthorized(r, message: str) -> None:
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.mimetype == "application/json"
    assert r.get_json() == {"code": 401, "error": message}


MISSING = "unauthorized: missing bearer token (Authorization: Bearer <token>)"


def test_without_tokens_everything_is_open(serve_app):
    client = serve_app(AuthConfig())
    assert client.post(UPLOAD, data=pprofs.cpu()).status_code == 200
    assert client.get("/api/0/services").status_code == 200
    assert client.get("/api/0/profiles", query_string={"service": "svc", **WINDOW}).status_code == 200


def test_an_upload_with_a_write_token_is_stored_and_read_back_with_a_read_token(serve_app):
    client = serve_app(AUTH)
    r = client.post(UPLOAD, data=pprofs.cpu(), headers=bearer(WRITE))
    assert r.status_code == 200, r.data
    pid = r.get_json()["body"]["id"]
    assert client.get(f"/api/0/profiles/{pid}", headers=bearer(READ)).data == pprofs.cpu()
    assert client.get("/api/0/services", headers=bearer(READ)).get_json()["body"] == ["svc"]


def test_an_upload_without_a_token_is_refused_and_not_stored(serve_app):
    client = serve_app(AUTH)
    assert_unauthorized(client.post(UPLOAD, data=pprofs.cpu()), MISSING)
    assert client.get("/api/0/services", headers=bearer(READ)).status_code == 404


@pytest.mark.parametrize("token", ["wrong", WRITE + "x", WRITE[:-1], READ])
def test_an_upload_with_a_wrong_or_read_token_is_refused(serve_app, token):
    client = serve_app(AUTH)
    assert_unauthorized(client.post(UPLOAD, data=pprofs.cpu(), headers=bearer(token)),
                        "unauthorized: the token does not grant writing")


@pytest.mark.parametrize("path", ["/api/0/services", "/api/0/profiles", "/api/0/profiles/merge",
                                  "/api/0/profiles/0123456789abcdefghij", "/api/0/no-such-route"])
def test_every_read_needs_a_read_token(serve_app, path):
    client = serve_app(AUTH)
    query = {"service": "svc", "type": "cpu", **WINDOW}
    assert_unauthorized(client.get(path, query_string=query), MISSING)
    assert_unauthorized(client.get(path, query_string=query, headers=bearer(WRITE)),
                        "unauthorized: the token does not grant reading")
    assert client.get(path, query_string=query, headers=bearer(READ)).status_code != 401


def test_a_token_in_both_lists_writes_and_reads(serve_app):
    client = serve_app(AUTH)
    assert client.post(UPLOAD, data=pprofs.cpu(), headers=bearer(BOTH_WAYS)).status_code == 200
    assert client.get("/api/0/services", headers=bearer(BOTH_WAYS)).status_code == 200


@pytest.mark.parametrize("path", ["/api/0/version", "/healthz", "/readyz", "/metrics"])
def test_version_health_and_metrics_need_no_token(serve_app, path):
    assert serve_app(AUTH).get(path).status_code == 200


def test_the_ingest_api_checks_ingest_tokens(tmp_path):
    published = []

    class Queue:
        def publish(self, record, _timeout):
            published.append(record)

        def ping(self):
            pass

    cfg = IngestApiRole(kafka=KafkaSettings(bootstrap="kafka.invalid:9092"), auth=AuthConfig(ingest_tokens=(WRITE,)))
    client = wiring.ingest_api_app(Queue(), cfg).test_client()
    assert_unauthorized(client.post(UPLOAD, data=pprofs.cpu()), MISSING)
    assert_unauthorized(client.post(UPLOAD, data=pprofs.cpu(), headers=bearer(READ)),
                        "unauthorized: the token does not grant writing")
    assert not published
    assert client.post(UPLOAD, data=pprofs.cpu(), headers=bearer(WRITE)).status_code == 200
    assert len(published) == 1


def test_the_query_api_checks_read_tokens(tmp_path):
    serve_cfg = ServeRole(data_dir=tmp_path)
    ports = wiring.open_embedded(serve_cfg)
    try:
        query = wiring.QueryPorts(blobs=ports.blobs, meta=ports.meta, windows=ports.windows)
        cfg = QueryApiRole(s3=None, database_url=serve_cfg.database_url, auth=AuthConfig(read_tokens=(READ,)))
        client = wiring.query_api_app(query, cfg).test_client()
        assert_unauthorized(client.get("/api/0/services"), MISSING)
        assert_unauthorized(client.get("/api/0/services", headers=bearer(WRITE)),
                            "unauthorized: the token does not grant reading")
        assert client.get("/api/0/services", headers=bearer(READ)).get_json() == {"code": 404, "error": "nothing found"}
        assert client.get("/api/0/version").status_code == 200
    finally:
        ports.close()


@pytest.mark.e2e
def test_serve_takes_tokens_from_the_environment_and_import_sends_one(tmp_path):
    port = embedded.free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROFEFE_")}
    token_file = tmp_path / "read-tokens"
    token_file.write_text(f"{READ}\n")
    serve_env = {**env, "PROFEFE_INGEST_TOKENS": f"{WRITE},{BOTH_WAYS}", "PROFEFE_READ_TOKENS_FILE": str(token_file)}
    log_path = tmp_path / "serve.log"
    profile = tmp_path / "cpu.pb.gz"
    profile.write_bytes(pprofs.cpu())
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([*embedded.profefe_command(), "serve", "--addr", f"127.0.0.1:{port}",
                                 "--data-dir", str(tmp_path / "data"), "--compact-interval", "0"],
                                stdout=log, stderr=subprocess.STDOUT, env=serve_env)
        try:
            embedded._wait_until_up(proc, url, log_path)

            def run_import(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
                return subprocess.run([*embedded.profefe_command(), "import", "--url", url, "--service", "svc",
                                       "--type", "cpu", "-q", *args, str(profile)],
                                      capture_output=True, text=True, timeout=60, env={**env, **extra_env})

            refused = run_import()
            assert refused.returncode == 1
            assert "HTTP 401: unauthorized: missing bearer token" in refused.stderr
            wrong = run_import("--token", READ)
            assert wrong.returncode == 1 and "does not grant writing" in wrong.stderr
            assert run_import(PROFEFE_TOKEN=WRITE).returncode == 0
            status, _ = embedded.get_json(url + "/api/0/services")
            assert status == 401
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert proc.returncode == 0, Path(log_path).read_text()
