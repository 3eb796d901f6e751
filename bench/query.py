"""Merge latency of a profefe-compatible collector over 1 hour and 24 hours of profiles.

    .venv/bin/python bench/query.py http://127.0.0.1:10100 [--repeat 5] [--upload-threads 4] [--days 1]

Loads one CPU profile per minute for the last 24 hours (1,440; `--days 7`: a week, 10,080, the
load being the figure then) of one fresh service: a real Go
profile from tests/testdata with `time_nanos` rewritten per minute, uploaded through the API
(timed too). Then times `GET /api/0/profiles/merge` over the newest hour (60 profiles) and the
whole day (1,440), the first request apart (a collector may cache or pre-merge), checking the
listing count and every merge: sample totals N times the fixture's, time the earliest profile's.
Prints a table; writes JSON under bench/results/. Loopback only.
"""
from __future__ import annotations

import argparse
import os
import http.client
import json
import queue
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    BenchError,
    Client,
    closest_fixture,
    loopback_base,
    machine,
    percentile,
    run_service,
    server_version,
    write_result,
)

from shared import pprof  # noqa: E402

TARGET_BYTES = 20 * 1024
PROFILES_PER_DAY = 24 * 60
RANGES = (("1h", 60), ("24h", PROFILES_PER_DAY))
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
MAX_REPEAT = 50
MERGE_TIMEOUT = 300.0  # seconds; a day's merge on a slow collector takes tens of seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url", help="collector base URL, e.g. http://127.0.0.1:10100 (loopback only)")
    ap.add_argument("--repeat", type=int, default=5, help=f"merges timed per range (at most {MAX_REPEAT})")
    ap.add_argument("--upload-threads", type=int, default=4, help="parallel uploads while loading (1-16)")
    ap.add_argument("--label", default="", help="free text stored with the results, e.g. 'profefe-go'")
    ap.add_argument("--days", type=int, default=1, help="days of history loaded, oldest first (1-7)")
    args = ap.parse_args(argv)

    try:
        if not 1 <= args.repeat <= MAX_REPEAT or not 1 <= args.upload_threads <= 16 or not 1 <= args.days <= 7:
            raise BenchError(f"--repeat 1..{MAX_REPEAT}, --upload-threads 1..16, --days 1..7")
        base = loopback_base(args.url)
        fixture = closest_fixture("cpu-*.pb.gz", TARGET_BYTES)
        template = pprof.parse(fixture.read_bytes())
        version = server_version(Client(base))
        service = run_service("query")
        # Whole minutes, ending two minutes ago: every profile is in the past and on a second.
        newest = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=2)
        times = [newest - timedelta(minutes=i) for i in range(args.days * PROFILES_PER_DAY - 1, -1, -1)]

        print(f"collector {args.url} version {version.get('version') or '?'}"
              f" (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
        print(f"profile   {fixture.name} ({fixture.stat().st_size} bytes) x {len(times)}, service {service}")
        load = upload_day(base, service, template, times, args.upload_threads)
        print(f"load      {load['profiles']} uploads in {load['seconds']:.1f}s = {load['profiles_per_s']:.1f} profiles/s"
              f" (p50 {load['p50_ms']:.1f} ms, p99 {load['p99_ms']:.1f} ms, {args.upload_threads} threads)")

        print(f"{'range':>5} {'profiles':>8} {'merged KB':>9} {'first ms':>9} {'p50 ms':>9} {'max ms':>9}  check")
        ranges = []
        client = Client(base, timeout=MERGE_TIMEOUT)
        for name, count in RANGES:
            row = time_merge(client, service, template, times[-count:], args.repeat)
            row["range"] = name
            ranges.append(row)
            print(f"{name:>5} {count:>8} {row['merged_bytes'] / 1024:>9.1f} {row['first_ms']:>9.1f} {row['p50_ms']:>9.1f}"
                  f" {row['max_ms']:>9.1f}  {row['check']}")
        client.close()
    except (BenchError, OSError, http.client.HTTPException) as exc:
        print(f"query bench: {exc}", file=sys.stderr)
        return 1

    path = write_result("query", {
        "bench": "query",
        "url": args.url,
        "label": args.label,
        "server_version": version,
        "service": service,
        "profile": {"file": fixture.name, "bytes": fixture.stat().st_size},
        "repeat": args.repeat,
        "days": args.days,
        "machine": machine(),
        "load": load,
        "ranges": ranges,
    })
    print(f"wrote {path}")
    return 0 if all(r["check"] == "ok" for r in ranges) else 1


def profile_at(template: pprof.Profile, when: datetime) -> bytes:
    p = pprof.Profile()
    p.CopyFrom(template)
    p.time_nanos = int(when.timestamp()) * 1_000_000_000
    return pprof.write(p)


def upload_day(base, service: str, template: pprof.Profile, times: list[datetime], threads: int) -> dict:
    target = "/api/0/profiles?" + urllib.parse.urlencode({"service": service, "type": "cpu", "labels": "bench=query"})
    bodies = [profile_at(template, t) for t in times]
    work: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    for body in bodies:
        work.put(body)
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        client = Client(base)
        try:
            while True:
                try:
                    body = work.get_nowait()
                except queue.Empty:
                    return
                t0 = time.perf_counter()
                status, data = client.request("POST", target, body)
                with lock:
                    if status == 200:
                        latencies.append(time.perf_counter() - t0)
                    else:
                        failures.append(f"HTTP {status}: {data[:200]!r}")
        finally:
            client.close()

    start = time.perf_counter()
    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - start
    if failures:
        raise BenchError(f"{len(failures)} of {len(bodies)} uploads failed, first: {failures[0]}")
    latencies.sort()
    return {
        "profiles": len(bodies),
        "seconds": round(wall, 3),
        "profiles_per_s": len(bodies) / wall,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


def time_merge(client: Client, service: str, template: pprof.Profile, times: list[datetime], repeat: int) -> dict:
    """Times `repeat` merges of the window holding `times`; every reply is checked, not only the last."""
    window = {"service": service, "type": "cpu",
              "from": times[0].strftime(TIME_FORMAT), "to": times[-1].strftime(TIME_FORMAT)}
    listing = "/api/0/profiles?" + urllib.parse.urlencode(window)
    status, data = client.request("GET", listing)
    if status != 200:
        raise BenchError(f"GET {listing}: HTTP {status} {data[:200]!r}")
    listed = len(json.loads(data)["body"])
    target = "/api/0/profiles/merge?" + urllib.parse.urlencode(window)
    elapsed = []
    checks = [] if listed == len(times) else [f"listed {listed} profiles, uploaded {len(times)}"]
    merged = b""
    for _ in range(repeat):
        t0 = time.perf_counter()
        status, merged = client.request("GET", target)
        elapsed.append(time.perf_counter() - t0)
        if status != 200:
            raise BenchError(f"GET {target}: HTTP {status} {merged[:200]!r}")
        checks.append(check_merge(merged, template, times))
    in_order = [round(x * 1000, 1) for x in elapsed]
    elapsed.sort()
    return {
        "profiles": len(times),
        "from": window["from"],
        "to": window["to"],
        "merged_bytes": len(merged),
        "first_ms": in_order[0],
        "p50_ms": percentile(elapsed, 50) * 1000,
        "max_ms": elapsed[-1] * 1000,
        "all_ms": in_order,
        "check": next((c for c in checks if c != "ok"), "ok"),
    }


def check_merge(merged: bytes, template: pprof.Profile, times: list[datetime]) -> str:
    """"ok", or what is wrong with the merge of len(times) copies of `template`."""
    try:
        p = pprof.parse(merged)
    except pprof.PprofError as exc:
        return f"unreadable merge: {exc}"
    n = len(times)
    want = tuple(n * v for v in pprof.totals(template))
    got = pprof.totals(p)
    if got != want:
        return f"totals {got} != {n} x fixture = {want}"
    earliest = int(times[0].timestamp()) * 1_000_000_000
    if p.time_nanos != earliest:
        return f"time_nanos {p.time_nanos} != earliest profile's {earliest}"
    return "ok"


if __name__ == "__main__":
    sys.exit(main())
