"""Faults under a continuous ingest of real profiles, against the real Kafka, S3 and PostgreSQL.

Each scenario POSTs 2,000 distinct Go CPU profiles to its own service at a steady pace, with
clients that retry 503s and refused connections, and breaks one thing while they do: an indexer
is SIGKILLed and restarted; Kafka, the S3 server or PostgreSQL is stopped for 10 s and started
again; a compactor is SIGKILLed in the middle of building windows (the network's faults are in
test_network.py). Then the audit: every profile that got a 200 is listed and stored in S3 as
sent (the MD5 of its ETag; a sample of them downloaded through the query-api as well), no profile is
stored twice, and the merge over the whole run equals the sum of the acknowledged uploads. The
table of all scenarios is printed at the end of the run.
"""
from __future__ import annotations

import random
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from shared.windows import WINDOW_PREFIX
from tests.faults import harness
from tests.faults.harness import FAULT_AFTER, PROFILES, ROWS, assert_clean, run

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.kafka, pytest.mark.s3, pytest.mark.postgres]

# Of an outage scenario's uploads, those sent only once the service is down: however fast the
# machine, the outage catches uploads in flight (Kafka's is the one the clients see).
OUTAGE_HELD = 400
COMPACTOR_HELD = 200  # of the compactor scenario's uploads, sent only once the compactor was killed
OUTAGE_SECONDS = 10.0


def test_an_indexer_killed_with_sigkill_and_restarted(rig):
    def fault(load):
        load.wait_for(FAULT_AFTER)
        killed_at.append(load.acknowledged_count())
        victim = rig.indexers.pop(0)
        victim.proc.kill()
        victim.proc.wait()
        rig.stack.daemons.remove(victim)
        time.sleep(2)
        again = rig.stack.start("indexer")
        rig.stack.wait_ready(again)
        rig.indexers.append(again)

    killed_at: list[int] = []
    result = run(rig, "indexer SIGKILL + restart", "fault-indexer", fault)
    ROWS[-1]["detail"] = f"one of two indexers killed after {killed_at[0]} uploads were acknowledged"
    assert_clean(result)


@pytest.mark.parametrize("service", ["kafka", "s3", "postgres"])
def test_a_service_stopped_for_ten_seconds(rig, service):
    outages = []

    def fault(load):
        load.wait_for(FAULT_AFTER)
        outages.append(harness.Outage(service, OUTAGE_SECONDS).start())
        outages[0].wait_down()
        load.release()
        outages[0].join()

    result = run(rig, f"{service} stopped {OUTAGE_SECONDS:g} s", f"fault-{service}", fault, hold_last=OUTAGE_HELD)
    o = outages[0]
    ROWS[-1]["detail"] = f"{service} down for {o.up_at - o.down_at:.1f} s, its restart included"
    if service == "kafka":
        assert result.statuses.get(503, 0) + result.statuses.get(0, 0) > 0, "the ingest API never refused"
        said = rig.ingest.log()
        assert "answered 503: Kafka" in said, "the ingest API's log does not say why it refused"
        narrated = re.search(r" (ERROR|WARNING) kafka\.(net|cluster|producer\.producer_batch)", said)
        assert not narrated, f"kafka-python narrated the outage: {narrated and narrated.group(0)}"
    assert_clean(result)


def test_a_compactor_killed_in_the_middle_of_a_window(rig):
    """Uploads stamped across 8 hours of a closed day, shuffled so every hour keeps changing; the
    compactor starts after 400 and is SIGKILLed while it is still writing windows, with the load
    still going; a new one finishes the work, and the whole-day merge (served from the daily
    window) must equal the sum."""
    day = harness.closed_day(datetime.now(timezone.utc))
    first = int((day + timedelta(hours=8)).timestamp()) * 1_000_000_000
    stamps = [first + (i % 8) * 3600 * 1_000_000_000 + (i // 8) * 1_000_000_000 for i in range(PROFILES)]
    random.Random(7).shuffle(stamps)
    window = (day, day + timedelta(days=1, seconds=-1), stamps)
    service = "fault-compactor"
    engine = rig.stack.db.engine
    seen = {}

    def windows(span: int, what: str = "count(*)") -> int:
        with engine.connect() as conn:
            return conn.execute(sa.text(
                f"SELECT coalesce({what}, 0) FROM windows w JOIN series s ON s.id = w.series_id "
                "WHERE s.service = :svc AND w.span = :span AND w.blob_key IS NOT NULL"),
                {"svc": service, "span": span}).scalar_one()

    def orphans() -> set[str]:
        keys = [key for key, _ in rig.blobs().list(WINDOW_PREFIX)]
        with engine.connect() as conn:
            kept = set(conn.execute(sa.text("SELECT blob_key FROM windows WHERE blob_key IS NOT NULL")).scalars())
        return set(keys) - kept

    def fault(load):
        load.wait_for(FAULT_AFTER)
        compactor = rig.stack.start("compactor", PROFEFE_COMPACT_INTERVAL="0.2")
        deadline = time.monotonic() + 120
        while windows(3600) < 3:
            assert compactor.proc.poll() is None, compactor.log()
            assert time.monotonic() < deadline, compactor.log()
            time.sleep(0.02)
        compactor.proc.kill()
        compactor.proc.wait()
        seen["at_kill"] = windows(3600)
        seen["acked_at_kill"] = load.acknowledged_count()
        load.release()
        rig.stack.daemons.remove(compactor)
        load.join()
        seen["orphans_after_kill"] = len(orphans())
        # Alone now, the new compactor may call any blob no row points to an orphan at once.
        again = rig.stack.start("compactor", PROFEFE_COMPACT_INTERVAL="0.2", PROFEFE_ORPHAN_AGE="1s")
        # Done when a pass that began after every acknowledged upload was indexed built nothing
        # and found nothing pending.
        acked = load.acknowledged_count()
        deadline = time.monotonic() + 300
        while len(harness.list_ids(rig.query.url, service, window[:2])) < acked:
            assert time.monotonic() < deadline, "the acknowledged uploads were not all indexed"
            time.sleep(0.5)
        passes_before = len(_passes(again))
        while not (len(_passes(again)) > passes_before + 1 and _idle(again)):
            assert again.proc.poll() is None, again.log()
            assert time.monotonic() < deadline, again.log()[-4000:]
            time.sleep(0.5)
        seen["daily"] = (windows(86400), windows(86400, "sum(w.profiles)"))
        # Its work checked, it would only poll beside the audit.
        rig.stack.daemons.remove(again)
        assert again.stop() == 0, again.log()[-4000:]

    # The compactor, started after 2 s, writes its 3 windows within a few seconds on a quiet
    # machine and after the whole load on a slow one: the last uploads wait for the kill, which
    # then always lands while the load is still going, however fast the machine.
    result = run(rig, "compactor SIGKILL mid-window", service, fault, times=window, hold_last=COMPACTOR_HELD)
    left = orphans()
    ROWS[-1]["detail"] = (f"killed with {seen['at_kill']}/8 hourly windows written and "
                          f"{seen['acked_at_kill']} uploads acknowledged; "
                          f"orphan window blobs: {seen['orphans_after_kill']} after the kill, {len(left)} at the end")
    assert seen["acked_at_kill"] < PROFILES, "the load was over before the kill"
    assert seen["at_kill"] < 8, f"every hour had its window before the kill: {seen}"
    assert not left, f"window blobs no window points to: {sorted(left)[:5]}"
    # One clean daily window holds every acknowledged upload: the whole-day merge came from it.
    assert seen["daily"] == (1, result.acknowledged), seen
    assert_clean(result)


def _passes(compactor) -> list[str]:
    return [line for line in compactor.log().splitlines() if "compactor pass:" in line]


def _idle(compactor) -> bool:
    """The newest pass built nothing and found nothing pending."""
    passes = _passes(compactor)
    return bool(passes) and re.search(r"compactor pass: 0 hourly .* 0 daily, .* 0 pending,", passes[-1]) is not None
