"""Pyroscope Push against profefe's own route on one collector: accepted profiles/s at N threads.

    .venv/bin/python bench/pyroscope_push.py http://127.0.0.1:10100 [--threads 16] [--requests 2000]

Both routes get the same kind of profile, shaped like what pyroscope-io sends (one sample type,
cpu/nanoseconds, uncompressed, `--stacks` Python-like stacks): profefe's route the pprof as is
(`POST /api/0/profiles`), Push the same pprof in a gzip-encoded `application/proto` PushRequest
with pyroscope-io's labels, as the agent sends it. Every request carries a different time_nanos,
so no two are the same profile. Prints a table; writes JSON under bench/results/. Loopback only.
"""
from __future__ import annotations

import argparse
import gzip
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BenchError, Client, loopback_base, machine, percentile, run_service, write_result  # noqa: E402

from services.ingest_api.push_pb2 import PushRequest  # noqa: E402
from shared import pprof  # noqa: E402

PY_LABELS = {"__name__": "process_cpu", "otel.scope.name": "pyroscope", "otel.scope.version": "1.4.0",
             "process.runtime.name": "cpython", "process.runtime.version": "3.11", "env": "bench"}


def python_profile(stacks: int, depth: int = 18) -> pprof.Profile:
    p = pprof.Profile()
    p.string_table.extend(["", "cpu", "nanoseconds"])
    vt = p.sample_type.add()
    vt.type, vt.unit = 1, 2
    p.period_type.type, p.period_type.unit, p.period = 1, 2, 10_000_000
    for f in range(1, 4 * depth + 1):
        p.string_table.append(f"handler_{f} /srv/app/module_{f % 9}.py")
        fn = p.function.add()
        fn.id, fn.name, fn.filename = f, len(p.string_table) - 1, len(p.string_table) - 1
        loc = p.location.add()
        loc.id = f
        line = loc.line.add()
        line.function_id, line.line = f, 10 + f
    for s in range(stacks):
        sample = p.sample.add()
        sample.location_id.extend(1 + (s * 7 + d * 3) % (4 * depth) for d in range(depth))
        sample.value.append(10_000_000 * (1 + s % 5))
    p.duration_nanos = 10_000_000_000
    return p


def push_body(raw: bytes, service: str) -> bytes:
    req = PushRequest()
    series = req.series.add()
    for k, v in {**PY_LABELS, "service_name": service}.items():
        lb = series.labels.add()
        lb.name, lb.value = k, v
    series.samples.add().raw_profile = raw
    return gzip.compress(req.SerializeToString(), compresslevel=6)


def run(base, route: str, threads: int, requests: int, profile: pprof.Profile, service: str) -> dict:
    counter = iter(range(requests))
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []
    t0_nanos = time.time_ns()

    def worker() -> None:
        client = Client(base)
        local = pprof.Profile()
        local.CopyFrom(profile)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            local.time_nanos = t0_nanos + i * 1000
            raw = local.SerializeToString()
            start = time.perf_counter()
            try:
                if route == "push":
                    status, data = client.request("POST", "/push.v1.PusherService/Push", push_body(raw, service),
                                                  {"Content-Type": "application/proto", "Content-Encoding": "gzip"})
                else:
                    status, data = client.request("POST", f"/api/0/profiles?service={service}&type=cpu&labels=env=bench",
                                                  raw)
            except OSError as exc:
                status, data = 0, str(exc).encode()
            took = time.perf_counter() - start
            with lock:
                (latencies if status == 200 else failures).append(took if status == 200 else data[:200].decode())
        client.close()

    started = time.perf_counter()
    cpu0 = time.process_time()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - started
    lat = sorted(latencies)
    return {"route": route, "threads": threads, "accepted": len(lat), "failed": len(failures),
            "first_failure": failures[0] if failures else "", "seconds": round(wall, 3),
            "profiles_per_s": round(len(lat) / wall, 1), "p50_ms": round(percentile(lat, 50) * 1000, 1),
            "p99_ms": round(percentile(lat, 99) * 1000, 1), "client_cpu_s": round(time.process_time() - cpu0, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--stacks", type=int, default=300, help="samples in the profile (pyroscope-io's 10 s: ~100-1000)")
    args = ap.parse_args(argv)
    try:
        base = loopback_base(args.url)
    except BenchError as exc:
        print(f"pyroscope_push: {exc}", file=sys.stderr)
        return 2
    profile = python_profile(args.stacks)
    size = len(profile.SerializeToString())
    rows = [run(base, route, args.threads, args.requests, profile, run_service(f"pyro-{route}"))
            for route in ("profefe", "push", "profefe", "push")]  # twice each, interleaved: a warm server for both
    print(f"profile: {size} bytes uncompressed, {args.stacks} samples; {args.threads} threads, {args.requests} requests")
    print(f"{'route':<8} {'accepted':>8} {'failed':>6} {'profiles/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'client cpu s':>12}")
    for r in rows:
        print(f"{r['route']:<8} {r['accepted']:>8} {r['failed']:>6} {r['profiles_per_s']:>10} {r['p50_ms']:>7} "
              f"{r['p99_ms']:>7} {r['client_cpu_s']:>12}")
    path = write_result("pyroscope-push", {"profile_bytes": size, "stacks": args.stacks, "rows": rows,
                                           "machine": machine()})
    print(f"wrote {path}")
    return 0 if all(r["failed"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
