"""Ingest throughput of a profefe-compatible collector: accepted profiles/s and latency.

    .venv/bin/python bench/ingest.py http://127.0.0.1:10100 [--requests 2000] [--levels 1,4,16] [--profile cpu-50k]

At each concurrency level, that many threads (each with its own keep-alive connection) POST the
same real ~20 KB Go CPU profile from tests/testdata (or `--profile`: a file, or cpu-50k, the
production-like 60 KB profile of bench/pprof_bench.py), its time set to the start of the run,
until `--requests` have been sent or `--max-seconds` have passed. Prints a table; writes JSON
under bench/results/. Loopback only. The client is Python too: its own CPU use is printed, so
a saturated client is visible. With `--server-pid` the server's CPU per accepted upload is
printed too (that process and its children, from /proc): on a shared machine it moves less
with the load than the rate does.
"""
from __future__ import annotations

import argparse
import os
import http.client
import json
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    BenchError,
    Client,
    closest_fixture,
    loopback_base,
    machine,
    percentile,
    process_tree_cpu,
    run_service,
    server_version,
    write_result,
)

from shared import pprof  # noqa: E402

TARGET_BYTES = 20 * 1024
WARMUP_REQUESTS = 20
MAX_REQUESTS = 100_000
MAX_SECONDS = 300.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url", help="collector base URL, e.g. http://127.0.0.1:10100 (loopback only)")
    ap.add_argument("--levels", default="1,4,16", help="comma-separated thread counts")
    ap.add_argument("--requests", type=int, default=2000, help=f"POSTs per level (at most {MAX_REQUESTS})")
    ap.add_argument("--max-seconds", type=float, default=60.0, help=f"time cap per level (at most {MAX_SECONDS:.0f})")
    ap.add_argument("--service", help="service name (default: a fresh one per run)")
    ap.add_argument("--label", default="", help="free text stored with the results, e.g. 'profefe-go'")
    ap.add_argument("--profile", help="a pprof file to post, or cpu-50k (default: the fixture nearest 20 KB)")
    ap.add_argument("--server-pid", type=int, help="the server's process id: print its CPU ms per upload")
    args = ap.parse_args(argv)

    try:
        levels = [int(x) for x in args.levels.split(",") if x.strip()]
        if not levels or min(levels) < 1 or max(levels) > 64:
            raise BenchError("--levels: thread counts between 1 and 64")
        if not 1 <= args.requests <= MAX_REQUESTS or not 0 < args.max_seconds <= MAX_SECONDS:
            raise BenchError(f"--requests 1..{MAX_REQUESTS}, --max-seconds up to {MAX_SECONDS:.0f}")
        base = loopback_base(args.url)
        fixture, data = chosen_profile(args.profile)
        bodies = DistinctBodies(data)
        body = bodies()
        service = args.service or run_service("ingest")
        version = server_version(Client(base))
    except BenchError as exc:
        print(f"ingest bench: {exc}", file=sys.stderr)
        return 2

    print(f"collector {args.url} version {version.get('version') or '?'}"
          f" (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"profile   {fixture} ({len(data)} bytes; {len(body)} bytes re-timed to now), service {service}")
    print(f"{'threads':>7} {'sent':>6} {'ok':>6} {'failed':>6} {'profiles/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8} {'client cpu':>10}" + (f" {'server ms/upload':>16}" if args.server_pid else ""))

    rows = []
    for threads in levels:
        query = urllib.parse.urlencode({"service": service, "type": "cpu", "labels": f"threads={threads}"})
        try:
            row = run_level(base, f"/api/0/profiles?{query}", bodies, threads, args.requests, args.max_seconds,
                            server_cpu=(lambda: process_tree_cpu(args.server_pid)) if args.server_pid else None)
        except (OSError, http.client.HTTPException) as exc:
            print(f"ingest bench: warm-up at {threads} threads failed: {exc}", file=sys.stderr)
            return 1
        rows.append(row)
        print(
            f"{threads:>7} {row['sent']:>6} {row['ok']:>6} {row['failed']:>6} {row['profiles_per_s']:>10.1f}"
            f" {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['max_ms']:>8.2f} {row['client_cpu']:>9.0%}"
            + (f" {row['server_cpu_ms_per_upload']:>16.2f}" if args.server_pid else "")
        )
        for message, count in sorted(row["errors"].items(), key=lambda kv: -kv[1])[:5]:
            print(f"        {count} x {message}")

    path = write_result("ingest", {
        "bench": "ingest",
        "url": args.url,
        "label": args.label,
        "server_version": version,
        "service": service,
        "profile": {"file": fixture, "file_bytes": len(data), "bytes": len(body)},
        "requests_per_level": args.requests,
        "max_seconds_per_level": args.max_seconds,
        "machine": machine(),
        "levels": rows,
    })
    print(f"wrote {path}")
    return 1 if any(r["failed"] for r in rows) else 0


def chosen_profile(name: str | None) -> tuple[str, bytes]:
    """(what it is, its bytes): the fixture nearest 20 KB, cpu-50k, or a file."""
    if name is None:
        fixture = closest_fixture("cpu-*.pb.gz", TARGET_BYTES)
        return str(fixture.relative_to(fixture.parents[2])), fixture.read_bytes()
    if name == "cpu-50k":
        from pprof_bench import synthetic_cpu
        return "cpu-50k (bench/pprof_bench.py)", synthetic_cpu()
    path = Path(name)
    if not path.is_file():
        raise BenchError(f"--profile: no file {name!r}")
    return str(path), path.read_bytes()


class DistinctBodies:
    """The fixture as a live agent would send it, a new profile each time: `time_nanos` is the
    time it is made (a nanosecond past the last one's when the clock has not moved). The
    collector stores the same bytes once, so one body posted over and over would measure
    answering repeats; a profile timed in an hour long closed would make a compacting collector
    rebuild that hour meanwhile; and a listing of the newest profiles (pipeline.py's lag watcher)
    finds the ones just sent only when their times are when they were sent."""

    def __init__(self, data: bytes) -> None:
        self._profile = pprof.parse(data)
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> bytes:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns())
            self._profile.time_nanos = self._last
            return pprof.write(self._profile)

    def made(self, n: int) -> list[bytes]:
        """`n` bodies made before a timed run, so the client's own work is not in its figures."""
        return [self() for _ in range(n)]


def run_level(base, target: str, bodies: DistinctBodies, threads: int, requests: int, max_seconds: float,
              server_cpu: Callable[[], float] | None = None) -> dict:
    warm = Client(base)
    for body in bodies.made(WARMUP_REQUESTS):
        warm.request("POST", target, body)
    warm.close()
    ready = bodies.made(requests)

    lock = threading.Lock()
    budget = [requests]
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: dict[str, int] = {}
    start = time.perf_counter()
    deadline = start + max_seconds

    def take() -> bytes | None:
        with lock:
            if budget[0] <= 0 or time.perf_counter() >= deadline:
                return None
            budget[0] -= 1
            return ready[budget[0]]

    def fail(message: str) -> None:
        with lock:
            errors[message] = errors.get(message, 0) + 1

    def worker(mine: list[float]) -> None:
        client = Client(base)
        try:
            while (body := take()) is not None:
                t0 = time.perf_counter()
                try:
                    status, data = client.request("POST", target, body)
                except (OSError, http.client.HTTPException) as exc:
                    fail(f"{type(exc).__name__}: {exc}")
                    continue
                if status == 200:
                    mine.append(time.perf_counter() - t0)
                else:
                    fail(f"HTTP {status}: {_error(data)}")
        finally:
            client.close()

    server0 = server_cpu() if server_cpu else 0.0
    cpu0 = time.process_time()
    pool = [threading.Thread(target=worker, args=(latencies[i],), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    server = server_cpu() - server0 if server_cpu else float("nan")

    ok = sorted(x for xs in latencies for x in xs)
    failed = sum(errors.values())
    return {
        "threads": threads,
        "sent": len(ok) + failed,
        "ok": len(ok),
        "failed": failed,
        "seconds": round(wall, 3),
        "profiles_per_s": len(ok) / wall if wall else 0.0,
        "p50_ms": percentile(ok, 50) * 1000,
        "p99_ms": percentile(ok, 99) * 1000,
        "max_ms": (ok[-1] if ok else float("nan")) * 1000,
        "client_cpu": cpu / wall if wall else 0.0,
        "server_cpu_ms_per_upload": server * 1000 / len(ok) if ok else float("nan"),
        "errors": errors,
    }


def _error(data: bytes) -> str:
    try:
        return str(json.loads(data).get("error"))
    except (ValueError, AttributeError):
        return data[:120].decode("utf-8", "replace")


if __name__ == "__main__":
    sys.exit(main())
