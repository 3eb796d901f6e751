"""The OpenAPI description: it matches the routes Flask serves, and schemathesis, generating
requests from it against the embedded app in-process, never gets a 5xx."""
from __future__ import annotations

import atexit
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import checks

from services import wiring
from services.web import openapi
from services.web.auth import PYROSCOPE_PATHS, QUERIER_PREFIX
from services.roles import QueryApiRole, ServeRole
from tests.api import pprofs

API = "/api/0/"
MAX_EXAMPLES = 30  # per operation; the whole run stays well under a minute


def api_routes(app) -> dict[str, set[str]]:
    """OpenAPI path -> lower-case methods, for every Flask rule under /api/0/ and Pyroscope's routes."""
    out: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(API) or rule.rule in PYROSCOPE_PATHS or rule.rule.startswith(QUERIER_PREFIX):
            methods = {m.lower() for m in rule.methods or ()} - {"head", "options"}
            out.setdefault(openapi.flask_rule_to_path(rule.rule), set()).update(methods)
    return out


@pytest.fixture
def embedded(tmp_path):
    cfg = ServeRole(data_dir=tmp_path / "data")
    ports = wiring.open_embedded(cfg)
    yield wiring.embedded_app(ports, cfg)
    ports.close()


def served_document(app) -> dict:
    r = app.test_client().get(openapi.OPENAPI_PATH)
    assert r.status_code == 200
    assert r.mimetype == "application/json"
    return r.get_json()


def test_every_api_route_of_the_embedded_app_is_described_and_nothing_else(embedded):
    doc = served_document(embedded)
    described = {path: set(ops) for path, ops in doc["paths"].items()}
    assert described == api_routes(embedded)
    assert set(openapi.document()["paths"]) == set(described)


def test_every_operation_describes_its_statuses_and_parameters(embedded):
    for path, ops in served_document(embedded)["paths"].items():
        for method, op in ops.items():
            assert "200" in op["responses"], (method, path)
            error_schema = {"$ref": "#/components/schemas/ConnectError" if path.startswith(("/push.", "/querier.")) else
                            "#/components/schemas/Error"}
            for status, answer in op["responses"].items():
                if status != "200" and path != "/ingest":  # /ingest answers errors in plain text, as Pyroscope
                    assert answer["content"]["application/json"]["schema"] == error_schema
            if "{ids}" in path:
                assert [p["name"] for p in op["parameters"]] == ["ids"]
            if path.startswith("/api/0/profiles"):
                names = {p["name"] for p in op["parameters"]}
                assert {"service", "labels"} <= names or path.endswith("{ids}"), (method, path)


def test_the_query_api_describes_only_what_it_serves(tmp_path):
    serve_cfg = ServeRole(data_dir=tmp_path)
    ports = wiring.open_embedded(serve_cfg)
    try:
        query = wiring.QueryPorts(blobs=ports.blobs, meta=ports.meta, windows=ports.windows)
        app = wiring.query_api_app(query, QueryApiRole(s3=None, database_url=serve_cfg.database_url))
        doc = served_document(app)
        assert {path: set(ops) for path, ops in doc["paths"].items()} == api_routes(app)
        assert "post" not in doc["paths"]["/api/0/profiles"]
    finally:
        ports.close()


# schemathesis -----------------------------------------------------------------------------------

CALLS: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()


def _collector_app():
    """The embedded app over a throwaway data folder, holding a few profiles so that some
    generated reads find something. Built at import: schemathesis parametrizes from a loaded
    schema, and its pytest fixture loader does not work with this pytest."""
    data = Path(tempfile.mkdtemp(prefix="profefe-openapi-"))
    cfg = ServeRole(data_dir=data)
    ports = wiring.open_embedded(cfg)
    atexit.register(shutil.rmtree, data, ignore_errors=True)
    atexit.register(ports.close)
    app = wiring.embedded_app(ports, cfg)
    client = app.test_client()
    for service in ("billing", "svc"):
        for ptype, body in (("cpu", pprofs.cpu()), ("heap", pprofs.heap())):
            assert client.post(f"/api/0/profiles?service={service}&type={ptype}", data=body).status_code == 200
    return app


@schemathesis.serializer("application/proto")
def _protobuf_body(_ctx, value) -> bytes:
    """A Connect route's protobuf body as generated: bytes of any shape (its schema is binary),
    so the decoders meet garbage, truncated and empty messages."""
    return value if isinstance(value, bytes) else str(value).encode()


schema = schemathesis.openapi.from_wsgi(openapi.OPENAPI_PATH, _collector_app())


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    if CALLS:
        print(f"\nschemathesis: {sum(CALLS.values())} requests; by operation {dict(CALLS)}; "
              f"by status {dict(sorted(STATUSES.items()))}")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_generated_requests_never_get_a_server_error(case):
    # The in-process transport does not undo a gzip Content-Encoding before the schema checks.
    response = case.call(headers={"Accept-Encoding": "identity"})
    CALLS[f"{case.method} {case.path}"] += 1
    STATUSES[response.status_code] += 1
    assert response.status_code < 500, (response.status_code, response.text[:500], case.as_curl_command())
    case.validate_response(response, checks=[
        checks.not_a_server_error,
        checks.status_code_conformance,
        checks.content_type_conformance,
        checks.response_schema_conformance,
    ])
