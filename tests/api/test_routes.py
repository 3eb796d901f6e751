"""Single downloads, services, version, and what every route shares: envelope, 404s, 405s."""
from __future__ import annotations

import pytest

from tests.api import pprofs
from tests.api.helpers import upload


@pytest.mark.parametrize("gzipped", [True, False], ids=["gzip", "raw"])
def test_single_download_is_byte_identical(api, gzipped):
    body = pprofs.build(gzip=gzipped)
    got = upload(api, body=body)
    r = api.get(f"/api/0/profiles/{got['id']}")
    assert r.status == 200 and r.data == body
    assert r.headers["Content-Type"] == "application/octet-stream"
    ext = "pb.gz" if gzipped else "pb"
    assert r.headers["Content-Disposition"] == f'attachment; filename="svc-cpu-{got["id"]}.{ext}"'


def test_single_download_filename_is_safe(api):
    got = upload(api, service='we"ird/ name')
    r = api.get(f"/api/0/profiles/{got['id']}")
    assert r.headers["Content-Disposition"] == f'attachment; filename="we_ird_name-cpu-{got["id"]}.pb.gz"'


def test_single_unknown_id(api):
    r = api.get("/api/0/profiles/0000000000000000000a")
    assert (r.status, r.error) == (404, 'nothing found: no profile with id "0000000000000000000a"')


def test_services_sorted(api):
    for name in ("zeta", "alpha", "Mid", "alpha"):
        upload(api, service=name)
    r = api.get("/api/0/services")
    assert (r.status, r.json) == (200, {"code": 200, "body": ["Mid", "alpha", "zeta"]})


def test_services_none(api):
    r = api.get("/api/0/services")
    assert (r.status, r.json) == (404, {"code": 404, "error": "nothing found"})


def test_version(api):
    r = api.get("/api/0/version")
    assert r.status == 200 and r.json["code"] == 200
    assert {"version", "commit", "build_time"} <= set(r.body)
    assert all(isinstance(v, str) and v for v in r.body.values())


@pytest.mark.parametrize("path", ["/api/0/x", "/api/0/profiles/a/b", "/api/1/profiles", "/nope"])
def test_unknown_path(api, path):
    r = api.get(path)
    assert (r.status, r.json) == (404, {"code": 404, "error": "nothing found"})
    assert r.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/api/0/services"),
        ("POST", "/api/0/version"),
        ("DELETE", "/api/0/profiles"),
        ("PUT", "/api/0/profiles"),
        ("POST", "/api/0/profiles/merge"),
        ("POST", "/api/0/profiles/0000000000000000000a"),
    ],
)
def test_wrong_method(api, method, path):
    r = api.request(method, path)
    assert (r.status, r.json) == (405, {"code": 405, "error": "method not allowed"})
    assert r.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "method, path, query",
    [
        ("POST", "/api/0/profiles", "service=svc&type=cpu"),
        ("POST", "/api/0/profiles", "type=cpu"),
        ("POST", "/api/0/profiles", "service=svc&type=nope"),
        ("GET", "/api/0/profiles", "service=svc&from=2020-01-01T00:00:00&to=2030-01-01T00:00:00"),
        ("GET", "/api/0/profiles", "service=nobody&from=2020-01-01T00:00:00&to=2030-01-01T00:00:00"),
        ("GET", "/api/0/profiles", "service=svc"),
        ("GET", "/api/0/profiles/merge", "service=svc"),
        ("GET", "/api/0/profiles/merge", "service=svc&type=cpu&from=2031-01-01T00:00:00&to=2031-01-01T00:00:00"),
        ("GET", "/api/0/profiles/nope", ""),
        ("GET", "/api/0/services", ""),
        ("GET", "/api/0/version", ""),
        ("GET", "/api/0/nothing", ""),
        ("PATCH", "/api/0/profiles", ""),
    ],
)
def test_every_json_reply_says_so(api, method, path, query):
    upload(api)
    r = api.request(method, path, query, pprofs.cpu() if method == "POST" else None)
    assert r.headers["Content-Type"] == "application/json"
    assert r.json["code"] == r.status
    assert ("body" in r.json) == (r.status == 200) and ("error" in r.json) == (r.status != 200)
