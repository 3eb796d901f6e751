"""The query API's own limits, through its app factory."""
from __future__ import annotations

from services.query_api.app import create_app
from services.query_api.config import QueryConfig
from services.query_api.query import Stores
from services.indexer.steps import index
from services.ingest_api.collect import collect
from services.ingest_api.config import IngestConfig
from shared.adapters.blobs_local import LocalBlobStore
from shared.adapters.meta_sql import SqlMetaStore, migrate, sqlite_url
from tests.api import pprofs


def test_a_merge_reads_at_most_max_merge_profiles(tmp_path):
    url = sqlite_url(tmp_path / "m.db")
    migrate(url)
    meta, blobs = SqlMetaStore(url), LocalBlobStore(tmp_path / "b")
    records = [collect({"service": "svc", "type": "cpu", "created_at": f"2026-01-01T00:00:0{i}"},
                       pprofs.cpu(), IngestConfig()) for i in range(3)]
    index(records, blobs, meta)
    client = create_app(Stores(meta=meta, blobs=blobs), QueryConfig(max_merge_profiles=2)).test_client()
    window = "service=svc&type=cpu&from=2026-01-01T00:00:00&to=2026-01-01T00:00:09"
    r = client.get(f"/api/0/profiles/merge?{window}")
    assert r.status_code == 400
    assert r.json["error"] == ('bad request: 3 profiles match, more than the 2 one merge may read; '
                               'narrow the window or set "limit"')
    assert client.get(f"/api/0/profiles/merge?{window}&limit=2").status_code == 200
    meta.close()
