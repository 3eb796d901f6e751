"""Each API also stands alone (the distributed mode runs them as separate daemons)."""
from __future__ import annotations

from functools import partial

from services.ingest_api.app import create_app as create_ingest
from services.query_api.app import create_app as create_query
from services.query_api.query import Stores
from shared.adapters.blobs_local import LocalBlobStore
from shared.adapters.meta_sql import SqlMetaStore, migrate, sqlite_url
from shared.adapters.queue_memory import MemoryQueue
from tests.api import pprofs


def test_ingest_publishes_to_a_queue():
    queue = MemoryQueue()
    client = create_ingest(partial(queue.publish, timeout=1)).test_client()
    r = client.post("/api/0/profiles?service=svc&type=cpu&labels=a=1", data=pprofs.cpu())
    assert r.status_code == 200
    [d] = queue.poll(10, timeout=1)
    assert d.record.id == r.json["body"]["id"] and d.record.body == pprofs.cpu()
    assert d.record.signature.endswith("samples/count,cpu/nanoseconds")
    assert client.get("/api/0/version").status_code == 200
    assert client.get("/api/0/profiles").json == {"code": 405, "error": "method not allowed"}


def test_query_alone(tmp_path):
    url = sqlite_url(tmp_path / "m.db")
    migrate(url)
    meta = SqlMetaStore(url)
    client = create_query(Stores(meta=meta, blobs=LocalBlobStore(tmp_path / "b"))).test_client()
    assert client.get("/api/0/services").status_code == 404
    assert client.post("/api/0/profiles").json == {"code": 405, "error": "method not allowed"}
    assert client.get("/api/0/version").json["body"]["version"]
    meta.close()
