"""Faults under a continuous ingest of real profiles, against the real Kafka, S3 and PostgreSQL.

Each scenario POSTs 2,000 distinct Go CPU profiles to its own service at a steady pace, with
clients that retry 503s and refused connections, and breaks one thing while they do: an indexer
is SIGKILLed and restarted; Kafka, the S3 server or PostgreSQL is stopped for 10 s and started
again; a compactor is SIGKILLed in the middle of building windows; the network between every
daemon and Kafka, S3 and PostgreSQL, and between the clients and the ingest-api, turns slow,
narrow, resetting or silent (Toxiproxy) and comes back. Then the audit: every
profile that got a 200 is listed and downloads byte-identical, no profile is stored twice, and
the merge over the whole run equals the sum of the acknowledged uploads. The table of all
scenarios is printed at the end of the run.
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
from tests.faults.conftest import ROWS, Rig
from tests.toxiproxy import Toxic

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.kafka, pytest.mark.s3, pytest.mark.postgres]

PROFILES = 2000
# Uploads/s. At 200 the 2,000 are in within ~10 s and an S3 or PostgreSQL outage (which only the
# indexers see) still begins with most of them not yet indexed; the audit, not the load, is most
# of a scenario's time. Kafka's outage must catch uploads in flight, hence its slower pace.
RATE = 200.0
KAFKA_RATE = 100.0
# The compactor scenario's load lasts 20 s (see there).
COMPACTOR_RATE = 100.0
COMPACTOR_HELD = 200  # of its uploads, sent only once the compactor was killed
FAULT_AFTER = 400  # acknowledged uploads before the fault
OUTAGE_SECONDS = 10.0


def now_window() -> tuple[datetime, datetime, list[int]]:
    """A window around now, and one distinct time_nanos per upload inside it."""
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)
    base = int(start.timestamp()) * 1_000_000_000 + 60 * 1_000_000_000
    return start, start + timedelta(hours=1), [base + i * 1000 for i in range(PROFILES)]


def run(rig: Rig, scenario: str, service: str, fault, *, times=None, rate: float = RATE,
        hold_last: int = 0) -> harness.Audit:
    start, end, stamps = times if times is not None else now_window()
    bodies = harness.make_bodies(rig.fixtures, stamps)
    load = harness.Load(rig.ingest_url, service, bodies, rate=rate, hold_last=hold_last).start()
    began = time.monotonic()
    try:
        fault(load)
    finally:
        load.release()
        load.join()
    loaded = time.monotonic() - began
    rig.check_alive()
    result = harness.audit(scenario, rig.query_urls, service, load, (start, end), rig.fixture_stacks)
    result.seconds = time.monotonic() - began
    result.phases = {"load and fault": loaded, **result.phases}
    ROWS.append(result.row())
    return result


def assert_clean(result: harness.Audit) -> None:
    assert result.acknowledged >= PROFILES, result.row()
    problems = {
        "refused uploads": result.refused[:5],
        "lost (acknowledged, not listed)": result.lost[:10],
        "altered (downloads differ)": result.altered[:10],
        "stored twice": result.duplicated,
        "listed, never sent": result.strangers[:10],
        "merge": result.merge_note,
    }
    assert result.clean, {k: v for k, v in problems.items() if v}


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
        outages[0].join()

    result = run(rig, f"{service} stopped {OUTAGE_SECONDS:g} s", f"fault-{service}", fault,
                 rate=KAFKA_RATE if service == "kafka" else RATE)
    o = outages[0]
    ROWS[-1]["detail"] = f"{service} down for {o.up_at - o.down_at:.1f} s, its restart included"
    if service == "kafka":
        assert result.statuses.get(503, 0) + result.statuses.get(0, 0) > 0, "the ingest API never refused"
    assert_clean(result)


# Toxics on every link (Toxiproxy's names; upstream is client to server): what the row says, how
# long they stay, the toxics.
NETWORK_FAULTS = {
    "latency": ("2 s latency", 10.0, [Toxic("slow", "latency", "downstream", {"latency": 2000, "jitter": 0})]),
    # 8 KB/s each way per connection: a 20 KB upload takes 2.5 s on every hop.
    "trickle": ("bandwidth 8 KB/s", 10.0, [Toxic("narrow-up", "bandwidth", "upstream", {"rate": 8}),
                                           Toxic("narrow-down", "bandwidth", "downstream", {"rate": 8})]),
    # Half the connections are closed after their first 8 KiB from the client (inside a
    # request: every upload is larger), and half lose the first answer to a TCP reset (the
    # request was served, its answer never arrives).
    "resets": ("resets mid-request", 10.0, [
        Toxic("cut", "limit_data", "upstream", {"bytes": 8192}, toxicity=0.5),
        Toxic("reset", "reset_peer", "downstream", {"timeout": 0}, toxicity=0.5)]),
    # Everything sent is dropped and no connection is closed.
    "blackhole": ("blackhole", 20.0, [Toxic("drop-up", "timeout", "upstream", {"timeout": 0}),
                                      Toxic("drop-down", "timeout", "downstream", {"timeout": 0})]),
}


@pytest.mark.parametrize("kind", list(NETWORK_FAULTS))
def test_the_network_misbehaving(rig, kind):
    """The toxics on every link (each daemon to Kafka, S3, PostgreSQL; the clients to the
    ingest-api) after 400 acknowledgements; when they are gone, every daemon must carry on by
    itself: the clients get 200s again and everything acknowledged is indexed. The blackhole
    starts on the S3 and PostgreSQL links alone, so the indexers are caught in the middle of
    their batches while uploads still arrive, and spreads to Kafka and the clients halfway."""
    what, seconds, toxics = NETWORK_FAULTS[kind]
    service = f"fault-net-{kind}"
    start, end, stamps = now_window()
    seen: dict[str, float] = {}
    loads: list[harness.Load] = []
    retries_before = _indexer_retries(rig)
    stores = [link for link in rig.links if link.endswith(("-s3", "-postgres"))]
    staged = kind == "blackhole"

    def fault(load):
        loads.append(load)
        load.wait_for(FAULT_AFTER)
        first = stores if staged else rig.links
        faults = [harness.NetworkFault(rig.proxies, first, toxics, seconds).start()]
        if staged:
            time.sleep(seconds / 2)
            rest = [link for link in rig.links if link not in stores]
            faults.append(harness.NetworkFault(rig.proxies, rest, toxics, seconds / 2).start())
        for net in faults:
            net.join()
        seen["on"] = max(n.off_at for n in faults) - faults[0].on_at
        seen["off_at"] = max(n.off_at for n in faults)
        acked = {u.id for u in load.uploads if u.id}
        deadline = time.monotonic() + harness.VISIBLE_TIMEOUT
        while not acked <= set(harness.list_ids(rig.query.url, service, (start, end))):
            assert time.monotonic() < deadline, f"what was acknowledged before {what} ended was not all indexed"
            time.sleep(0.25)
        seen["indexed"] = time.monotonic() - seen["off_at"]

    links = "stores, then all" if staged else "all links"
    result = run(rig, f"{what} {seconds:g} s, {links}", service, fault, times=(start, end, stamps))
    after = [u.acked_at - seen["off_at"] for u in loads[0].uploads if u.acked_at > seen["off_at"]]
    # Every upload may have had its 200 before the toxics ended (a long fault outlasts the load).
    first = f"first 200 in {min(after):.1f} s" if after else "no upload left to acknowledge"
    ROWS[-1]["detail"] = (f"toxics on for {seen['on']:.1f} s; after: {first}, "
                          f"all acknowledged until then indexed in {seen['indexed']:.1f} s; "
                          f"indexer retries {_indexer_retries(rig) - retries_before}")
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
        # Its work checked, it would only poll beside the audit's downloads.
        rig.stack.daemons.remove(again)
        assert again.stop() == 0, again.log()[-4000:]

    # At this pace the load lasts 20 s: the compactor, started after 4 s, wrote its 3 windows
    # within 4 s on a quiet machine; on a slow one it took longer than the whole load, so the
    # last uploads wait for the kill, which then always lands while the load is still going.
    result = run(rig, "compactor SIGKILL mid-window", service, fault, times=window, rate=COMPACTOR_RATE,
                 hold_last=COMPACTOR_HELD)
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


def _indexer_retries(rig: Rig) -> int:
    """Retries of a step the indexers logged (a store or Kafka did not answer), all told."""
    return sum(d.log().count("; retrying in ") for d in rig.indexers)


def _passes(compactor) -> list[str]:
    return [line for line in compactor.log().splitlines() if "compactor pass:" in line]


def _idle(compactor) -> bool:
    """The newest pass built nothing and found nothing pending."""
    passes = _passes(compactor)
    return bool(passes) and re.search(r"compactor pass: 0 hourly .* 0 daily, .* 0 pending,", passes[-1]) is not None
