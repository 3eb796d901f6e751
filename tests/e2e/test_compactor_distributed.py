"""Two `profefe compactor` daemons beside the distributed pipeline (Kafka, S3, PostgreSQL): every
window is built once, the query API merges through them with the same answer as a raw merge,
and SIGTERM stops each compactor with exit 0."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from shared import pprof
from shared.model import format_time
from tests.e2e import distributed

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.s3, pytest.mark.postgres]

TESTDATA = Path(__file__).resolve().parents[1] / "testdata"


def body_at(at: datetime, n: int) -> bytes:
    p = pprof.parse((TESTDATA / f"cpu-{n % 10 + 1}.pb.gz").read_bytes())
    p.time_nanos = int(at.timestamp()) * 1_000_000_000
    return pprof.write(p)


def merged(query_url: str, start: datetime, end: datetime, **extra: str):
    params = {"service": "e2e-compact", "type": "cpu", "from": format_time(start)[:-1],
              "to": format_time(end)[:-1], **extra}
    status, _, data = distributed.request(query_url, "GET", f"/api/0/profiles/merge?{urlencode(params)}")
    assert status == 200, data
    p = pprof.parse(data)
    return pprof.totals(p), p.duration_nanos, len(p.sample)


def test_compactor_replicas_beside_the_pipeline(request, tmp_path):
    kafka, s3, pg = distributed.real_services(request)
    stack = distributed.Stack(kafka, s3, pg, tmp_path)
    try:
        stack.migrate()
        query, ingest, indexer = stack.start("query-api"), stack.start("ingest-api"), stack.start("indexer")
        for d in (query, ingest, indexer):
            stack.wait_ready(d)
        day = (datetime.now(timezone.utc) - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
        ids = []
        for n, hour in enumerate(range(0, 24, 3)):
            params = {"service": "e2e-compact", "type": "cpu", "labels": f"env={'ab'[n % 2]}"}
            status, _, data = distributed.request(
                ingest.url, "POST", f"/api/0/profiles?{urlencode(params)}", body_at(day + timedelta(hours=hour), n))
            assert status == 200, data
            ids.append(json.loads(data)["body"]["id"])
        distributed.wait_visible(query.url, ids)
        whole_day = (day, day + timedelta(days=1, seconds=-1))
        raw = merged(query.url, *whole_day, limit="1000")  # limit reads raw profiles

        compactors = [stack.start("compactor", PROFEFE_COMPACT_INTERVAL="0.5") for _ in range(2)]
        deadline = time.monotonic() + 90
        while True:
            with stack.db.engine.connect() as conn:
                spans = [r[0] for r in conn.execute(sa.text("SELECT span FROM windows"))]
            # Both replicas passing, not only the windows written: on a busy machine one replica
            # can write them all while the other still starts, and a SIGTERM then ends it by default.
            if spans.count(86400) == 2 and all("compactor pass:" in c.log() for c in compactors):
                break
            for c in compactors:
                assert c.proc.poll() is None, c.log()
            assert time.monotonic() < deadline, "\n".join(c.log() for c in compactors)
            time.sleep(0.5)
        assert spans.count(3600) == 8
        assert merged(query.url, *whole_day) == raw
        for c in compactors:
            assert c.stop() == 0, c.log()
            assert "compactor pass:" in c.log()
            stack.daemons.remove(c)
    finally:
        stack.close()
