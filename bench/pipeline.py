"""The distributed pipeline on this machine: ingest throughput, index lag and indexer throughput.

    eval "$(scripts/services.sh env)"
    .venv/bin/python bench/pipeline.py [--levels 1,4,16] [--requests 1000] [--lag-seconds 20] [--backlog 1500]

Starts its own daemons over the real Kafka, S3 and PostgreSQL that `scripts/services.sh` runs
(`profefe migrate` into a fresh topic, bucket and database, then `query-api`, `ingest-api` and
indexers as subprocesses), then measures:

1. ingest: POSTs of a real ~20 KB Go CPU profile at each concurrency level (bench/ingest.py's
   loop): accepted profiles/s and latency; a 200 means Kafka acknowledged it (acks=all).
2. indexer throughput: with the indexers stopped, a backlog is posted; then one indexer (and in
   a second round two) is started and the rate at which the rows appear is timed, from the first
   row to the last (so process start and group join are left out).
3. index lag: with two indexers running, POSTs paced at half the best ingest rate of step 1; for
   every 200, the time until the profile is listed by `GET /api/0/profiles` (polled every 50 ms
   for the newest ~3 s worth, so lag is measured to within 50 ms; a profile that falls out of
   that window unseen is looked up by id at the end and counts as an infinite lag if it is
   there, or as never visible). Goal: p99 under 1 s.

Prints a table; writes JSON under bench/results/. Everything runs on loopback; the client and
the daemons share the machine's cores, so the load average is recorded beside the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    ROOT,
    BenchError,
    Client,
    closest_fixture,
    loopback_base,
    machine,
    percentile,
    run_service,
    write_result,
)
from ingest import WARMUP_REQUESTS, DistinctBodies, run_level  # noqa: E402

import sqlalchemy as sa  # noqa: E402

from tests.e2e.distributed import Stack  # noqa: E402

TARGET_BYTES = 20 * 1024
POLL_SECONDS = 0.05
WINDOW = {"from": "2000-01-01T00:00:00", "to": "2100-01-01T00:00:00"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", default="1,4,16", help="comma-separated ingest thread counts")
    ap.add_argument("--requests", type=int, default=1000, help="POSTs per ingest level")
    ap.add_argument("--backlog", type=int, default=1500, help="profiles indexed per indexer-throughput round")
    ap.add_argument("--lag-seconds", type=float, default=20.0, help="how long the paced lag run posts")
    ap.add_argument("--lag-rate", type=float, help="profiles/s of the lag run (default: half the best ingest rate)")
    args = ap.parse_args(argv)
    try:
        levels = [int(x) for x in args.levels.split(",") if x.strip()]
        if not levels or min(levels) < 1 or max(levels) > 64:
            raise BenchError("--levels: thread counts between 1 and 64")
        if not (1 <= args.requests <= 100_000 and 10 <= args.backlog <= 100_000 and 1 <= args.lag_seconds <= 600):
            raise BenchError("--requests 1..100000, --backlog 10..100000, --lag-seconds 1..600")
        stack = stack_from_env()
        bodies = DistinctBodies(closest_fixture("cpu-*.pb.gz", TARGET_BYTES).read_bytes())
        body = bodies()
    except BenchError as exc:
        print(f"pipeline bench: {exc}", file=sys.stderr)
        return 2

    result: dict = {"bench": "pipeline", "machine": machine(), "profile_bytes": len(body)}
    try:
        stack.migrate()
        query = stack.start("query-api")
        ingest = stack.start("ingest-api")
        for d in (query, ingest):
            stack.wait_ready(d)
        base, qbase = loopback_base(ingest.url), loopback_base(query.url)
        print(f"daemons: ingest-api {ingest.url}, query-api {query.url}, topic profefe-{stack.name}")

        result["ingest"] = bench_ingest(base, bodies, levels, args.requests)
        best = max(r["profiles_per_s"] for r in result["ingest"])

        # Nothing is indexed yet: the first round's backlog also holds the ingest runs' profiles.
        acknowledged = sum(r["ok"] + WARMUP_REQUESTS for r in result["ingest"])
        result["indexers"] = []
        for n in (1, 2):
            row = bench_indexers(stack, base, bodies, n, args.backlog, acknowledged)
            acknowledged = row["acknowledged_total"]
            result["indexers"].append(row)

        indexers = [stack.start("indexer"), stack.start("indexer")]
        for d in indexers:
            stack.wait_ready(d)
        result["lag"] = bench_lag(base, qbase, bodies, rate=args.lag_rate or best / 2, seconds=args.lag_seconds)
        codes = stack.stop()
        result["daemon_exit_codes"] = codes
        result["machine_after"] = machine()
    finally:
        stack.close()

    path = write_result("pipeline", result)
    print(f"wrote {path.relative_to(ROOT)}")
    lag = result["lag"]
    ok = lag["failed"] == 0 and lag["not_visible"] == 0
    return 0 if ok else 1


def stack_from_env() -> Stack:
    """A Stack over the services the PROFEFE_TEST_* variables name (tests/services.py reads them)."""
    from tests.services import (
        ServiceConfigError,
        kafka_bootstrap_from_env,
        postgres_url_from_env,
        s3_settings_from_env,
    )

    try:
        kafka, s3, pg = kafka_bootstrap_from_env(), s3_settings_from_env(), postgres_url_from_env()
    except ServiceConfigError as exc:
        raise BenchError(str(exc)) from None
    if kafka is None or s3 is None or pg is None:
        raise BenchError("PROFEFE_TEST_KAFKA_BOOTSTRAP, PROFEFE_TEST_S3_* and PROFEFE_TEST_DATABASE_URL must be set:"
                         " run `scripts/services.sh up` and `eval \"$(scripts/services.sh env)\"` first")
    workdir = ROOT / "bench" / "results" / "pipeline-logs"
    workdir.mkdir(parents=True, exist_ok=True)
    return Stack(kafka, vars(s3), pg, workdir,
                 name="bench" + os.urandom(4).hex())


def bench_ingest(base, bodies: DistinctBodies, levels: list[int], requests: int) -> list[dict]:
    service = run_service("pipeline-ingest")
    print("\ningest (no indexer running: the API's own rate)")
    print(f"{'threads':>7} {'ok':>6} {'failed':>6} {'profiles/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    rows = []
    for threads in levels:
        target = "/api/0/profiles?" + urllib.parse.urlencode({"service": service, "type": "cpu"})
        row = run_level(base, target, bodies, threads, requests, 120.0)
        rows.append(row)
        print(f"{threads:>7} {row['ok']:>6} {row['failed']:>6} {row['profiles_per_s']:>10.1f}"
              f" {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f}")
    return rows


def bench_indexers(stack: Stack, base, bodies: DistinctBodies, count: int, backlog: int, before: int) -> dict:
    """Post `backlog` more profiles while no indexer runs, then start `count` indexers and time
    the rows appearing, first to last. `before`: profiles acknowledged earlier (all rows count)."""
    service = run_service(f"pipeline-backlog{count}")
    target = "/api/0/profiles?" + urllib.parse.urlencode({"service": service, "type": "cpu"})
    posted = run_level(base, target, bodies, 8, backlog, 300.0)
    total = before + posted["ok"] + WARMUP_REQUESTS
    with stack.db.engine.connect() as conn:
        already = conn.execute(sa.text("SELECT count(*) FROM profiles")).scalar_one()
    indexers = [stack.start("indexer") for _ in range(count)]
    first = last = None
    seen = 0
    deadline = time.monotonic() + 600
    with stack.db.engine.connect() as conn:
        stmt = sa.text("SELECT count(*) FROM profiles")
        while seen < total and time.monotonic() < deadline:
            seen = conn.execute(stmt).scalar_one()
            conn.commit()
            now = time.monotonic()
            if seen > already and first is None:
                first = (now, seen)
            last = (now, seen)
            time.sleep(POLL_SECONDS)
    codes = [d.stop() for d in indexers]
    stack.daemons = [d for d in stack.daemons if d not in indexers]
    rate = (last[1] - first[1]) / (last[0] - first[0]) if first and last and last[0] > first[0] else float("nan")
    row = {"indexers": count, "backlog": total - already, "indexed": seen - already, "rows_per_s": rate,
           "acknowledged_total": total, "exit_codes": codes}
    print(f"\nindexers: {count}  backlog {total - already}  indexed {seen - already}"
          f"  {rate:.1f} profiles/s (first row to last)")
    return row


def bench_lag(base, qbase, bodies: DistinctBodies, *, rate: float, seconds: float,
              on_tick: Callable[[dict], None] | None = None, tick_seconds: float = 10.0,
              kind: str = "pipeline-lag") -> dict:
    """POSTs paced at `rate`/s; for each 200, seconds until `GET /api/0/profiles` lists it.
    `on_tick`, if given, is called from the watcher about every `tick_seconds` with the counts
    so far (elapsed, acknowledged, failed, failures, pending, lag_p99_ms), so long runs can
    report progress and sample the daemons."""
    service = run_service(kind)
    target = "/api/0/profiles?" + urllib.parse.urlencode({"service": service, "type": "cpu"})
    # Ids of one ingest-api grow with time, so the newest rows hold every recent one; asking for
    # about 3 s worth keeps the watcher's own load on the query API small.
    newest = min(500, max(50, int(rate * 3) + 20))
    find = "/api/0/profiles?" + urllib.parse.urlencode({"service": service, **WINDOW, "limit": newest})
    lock = threading.Lock()
    acked: dict[str, float] = {}
    lags: list[float] = []
    failures: dict[str, int] = {}
    done = threading.Event()
    total = max(1, int(rate * seconds))
    start = time.perf_counter() + 0.2
    next_slot = [0]

    def poster() -> None:
        client = Client(base)
        try:
            while True:
                with lock:
                    i = next_slot[0]
                    next_slot[0] += 1
                if i >= total:
                    return
                wait = start + i / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                try:
                    status, data = client.request("POST", target, bodies())
                except OSError as exc:
                    status, data = 0, type(exc).__name__.encode()
                now = time.perf_counter()
                with lock:
                    if status == 200:
                        acked[json.loads(data)["body"]["id"]] = now
                    else:
                        key = f"HTTP {status}" if status else data.decode()
                        failures[key] = failures.get(key, 0) + 1
        finally:
            client.close()

    def snapshot(now: float) -> dict:
        with lock:
            timed = sorted(lags)
            return {"elapsed": now - start, "acknowledged": len(lags) + len(acked),
                    "failed": sum(failures.values()), "failures": dict(failures), "pending": len(acked),
                    "lag_p99_ms": percentile(timed, 99) * 1000}

    def watcher() -> None:
        client = Client(qbase)
        next_tick = start + tick_seconds
        try:
            while True:
                try:
                    status, data = client.request("GET", find)
                except OSError:  # a query API that is down for a moment delays the timing only
                    status, data = 0, b""
                now = time.perf_counter()
                if on_tick is not None and now >= next_tick:
                    next_tick += tick_seconds
                    on_tick(snapshot(now))
                listed = {p["id"] for p in json.loads(data)["body"]} if status == 200 else set()
                with lock:
                    for pid in [p for p in acked if p in listed]:
                        lags.append(now - acked.pop(pid))
                    if done.is_set() and not acked:
                        return
                if done.is_set() and time.perf_counter() > done_at[0] + 30:
                    return
                time.sleep(POLL_SECONDS)
        finally:
            client.close()

    done_at = [0.0]
    posters = [threading.Thread(target=poster, daemon=True) for _ in range(8)]
    watch = threading.Thread(target=watcher, daemon=True)
    watch.start()
    for t in posters:
        t.start()
    for t in posters:
        t.join()
    done_at[0] = time.perf_counter()
    done.set()
    watch.join()
    # Those the watcher never saw either fell out of its window while still unseen (lag beyond
    # it: visible now, lag unknown) or are missing; ask for each.
    client = Client(qbase)
    late = [pid for pid in acked if client.request("GET", f"/api/0/profiles/{pid}")[0] == 200]
    client.close()
    timed = len(lags)
    lags.extend([float("inf")] * len(late))  # their lag is beyond the window: they weigh in as such
    lags.sort()
    row = {
        "target_rate": rate,
        "achieved_rate": (timed + len(acked)) / max(1e-9, done_at[0] - start),
        "posted": total,
        "acknowledged": timed + len(acked),
        "failed": sum(failures.values()),
        "failures": failures,
        "seen_late_unmeasured": len(late),
        "not_visible": len(acked) - len(late),
        "lag_p50_ms": percentile(lags, 50) * 1000,
        "lag_p99_ms": percentile(lags, 99) * 1000,
        "lag_max_ms": (lags[-1] if lags else float("nan")) * 1000,
        "poll_ms": POLL_SECONDS * 1000,
        "poll_limit": newest,
    }
    print(f"\nindex lag at {rate:.1f} profiles/s for {seconds:g}s (two indexers):"
          f" p50 {row['lag_p50_ms']:.0f} ms, p99 {row['lag_p99_ms']:.0f} ms, max {row['lag_max_ms']:.0f} ms"
          f" ({row['acknowledged']} acknowledged, {row['failed']} failed, {len(late)} visible too late to"
          f" time, {row['not_visible']} never visible)")
    return row


if __name__ == "__main__":
    sys.exit(main())
