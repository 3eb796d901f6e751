"""gzip of text replies when the client accepts it, for the JSON routes and the UI's files
alike, through `profefe serve`'s app and the query API's."""
from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from services import wiring
from services.query_api.app import create_app
from services.query_api.query import Stores
from services.query_api.ui import STATIC
from services.roles import ServeRole

TESTDATA = Path(__file__).resolve().parents[1] / "testdata"
# The fixtures were recorded on 2026-11-25 around 16:06 UTC; their time_nanos is their created_at.
QUERY = "service=shop&type=cpu&from=2026-11-25T15:00:00&to=2026-11-25T17:00:00"


@pytest.fixture
def client(tmp_path):
    cfg = ServeRole(data_dir=tmp_path / "data")
    ports = wiring.open_embedded(cfg)
    client = wiring.embedded_app(ports, cfg).test_client()
    for i in range(1, 4):
        r = client.post("/api/0/profiles?service=shop&type=cpu", data=(TESTDATA / f"cpu-{i}.pb.gz").read_bytes())
        assert r.status_code == 200, r.get_data()
    yield client
    ports.close()


def test_json_is_gzipped_when_accepted_and_says_so(client):
    plain = client.get(f"/api/0/flamegraph?{QUERY}")
    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
    assert "Accept-Encoding" in plain.headers["Vary"]
    zipped = client.get(f"/api/0/flamegraph?{QUERY}", headers={"Accept-Encoding": "br, gzip;q=0.8"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == plain.data
    assert int(zipped.headers["Content-Length"]) == len(zipped.data) < len(plain.data)


def test_a_refused_gzip_and_small_bodies_stay_plain(client):
    refused = client.get(f"/api/0/flamegraph?{QUERY}", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused.headers
    small = client.get("/api/0/services", headers={"Accept-Encoding": "gzip"})
    assert small.get_json()["body"] == ["shop"] and "Content-Encoding" not in small.headers


def test_the_ui_files_are_gzipped_with_a_weak_etag(client):
    r = client.get("/ui/app.js", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(r.data) == (STATIC / "app.js").read_bytes()
    assert r.headers["ETag"].startswith('W/"')
    again = client.get("/ui/app.js", headers={"Accept-Encoding": "gzip", "If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304
    page = client.get("/ui/", headers={"Accept-Encoding": "gzip"})
    assert page.headers["Content-Encoding"] == "gzip" and b"<html" in gzip.decompress(page.data)


def test_a_pprof_download_is_not_encoded_twice(client):
    r = client.get(f"/api/0/profiles/merge?{QUERY}", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and "Content-Encoding" not in r.headers
    assert r.data[:2] == b"\x1f\x8b"  # the pprof file itself is gzip


def test_the_query_api_app_compresses_too(tmp_path):
    cfg = ServeRole(data_dir=tmp_path / "data")
    ports = wiring.open_embedded(cfg)
    try:
        client = create_app(Stores(meta=ports.meta, blobs=ports.blobs)).test_client()
        r = client.get("/ui/app.js", headers={"Accept-Encoding": "gzip"})
        assert r.headers["Content-Encoding"] == "gzip"
    finally:
        ports.close()
