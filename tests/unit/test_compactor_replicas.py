"""Several compactors over one PostgreSQL database at once: every window is built, none twice at
the same moment, and the merges answer what a raw merge does."""
from __future__ import annotations

import threading
import uuid

import pytest

from services.compactor.config import CompactorConfig
from services.compactor.worker import Compactor
from services.query_api.config import QueryConfig
from services.query_api.query import Stores, merge_query
from shared.adapters.blobs_local import LocalBlobStore
from shared.adapters.meta_sql import SqlMetaStore, migrate
from shared.adapters.windows_sql import SqlWindowStore
from shared.model import Labels, ProfileType, Query
from shared.windows import DAY, HOUR, from_epoch
from tests.services import Database
from tests.support import unavailable
from tests.unit.test_compactor_windows import DAY0, SIG, canonical, profile_at

pytestmark = pytest.mark.postgres


@pytest.fixture
def database(request):
    try:
        admin = request.getfixturevalue("postgres_url")
    except pytest.FixtureLookupError:
        unavailable("a PostgreSQL server (the postgres_url fixture)")
    db = Database(admin, "compactor_" + uuid.uuid4().hex[:10])
    migrate(db.url)
    yield db.url
    db.drop()


def test_replicas_share_the_work_and_agree_with_a_raw_merge(database, tmp_path):
    from shared.model import IngestRecord, from_unix, new_id
    from services.indexer.steps import index

    blobs = LocalBlobStore(tmp_path / "blobs")
    meta = SqlMetaStore(database)
    records = []
    for i, at in enumerate(range(DAY0, DAY0 + DAY + 6 * HOUR, 700)):
        labels = Labels.parse(["env=prod", "env=dev"][i % 2])
        records.append(IngestRecord(id=new_id(at), service="shop", type=ProfileType.CPU, labels=labels,
                                    created_at=from_unix(at), received_at=from_unix(at), body=profile_at(at, i),
                                    signature=SIG))
    index(records, blobs, meta)

    now = DAY0 + 2 * DAY
    replicas = [Compactor(SqlWindowStore(database), blobs, CompactorConfig(), clock=lambda: now) for _ in range(3)]
    reports = []
    threads = [threading.Thread(target=lambda c=c: reports.append(c.run_pass())) for c in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert sum(r.failed for r in reports) == 0
    # 30 hours x 2 series, 1 whole day x 2 series; a replica that found a window taken skipped it.
    assert sum(r.hours for r in reports) == 60 and sum(r.days for r in reports) == 2
    assert all(not r.pending for r in reports)
    assert len(list((tmp_path / "blobs" / "windows").rglob("hour-*"))) == 60  # no orphan from a double build

    windows = SqlWindowStore(database)
    try:
        q = Query("shop", ProfileType.CPU, Labels(), from_epoch(DAY0 - 10), from_epoch(DAY0 + DAY + 6 * HOUR))
        with_windows, _ = merge_query(Stores(meta, blobs, windows), q, QueryConfig())
        raw, _ = merge_query(Stores(meta, blobs, None), q, QueryConfig())
        assert canonical(with_windows) == canonical(raw)
    finally:
        windows.close()
        meta.close()
        for c in replicas:
            c.windows.close()
