"""A soak of the whole distributed pipeline: steady ingest for minutes, then what leaked or broke.

    eval "$(scripts/services.sh env)"
    .venv/bin/python bench/soak.py [--minutes 10] [--rate PROFILES_PER_S] [--max-requests 1000]

Starts its own daemons over the real Kafka, S3 and PostgreSQL that `scripts/services.sh` runs
(`profefe migrate` into a fresh topic, bucket and database, then `query-api`, `ingest-api`, two
`indexer`s and a `compactor` passing every 5 s), then:

1. max rate: unless `--rate` is given, `--max-requests` POSTs of a real ~20 KB Go CPU profile
   (timed at the start of the run) from 16 threads (bench/ingest.py's loop); the soak rate is half
   the profiles/s measured. This also warms the daemons up.
2. soak: POSTs paced at that rate for `--minutes`, each 200 timed until `GET /api/0/profiles`
   lists it (bench/pipeline.py's lag run: polled every 50 ms; a profile that falls out of the
   watcher's ~3 s window unseen counts as an infinite lag if it is there at the end, or as never
   visible). A progress line every 30 s.
3. memory: the resident set (VmRSS, the daemon's process and any children) of every daemon
   before the soak, every 10 s during it (the peak is kept) and at its end.
4. shutdown: SIGTERM to every daemon, APIs first; each must exit 0.

Prints a table; writes JSON under bench/results/ (daemon logs under bench/results/pipeline-logs/).
Exits 1 if any POST failed, any acknowledged profile never became visible, or a daemon did not
exit 0. The client and the daemons share the machine's cores, so the load average is recorded
before and after.
"""
from __future__ import annotations

import argparse
import sys
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    ROOT,
    BenchError,
    closest_fixture,
    loopback_base,
    machine,
    process_tree,
    run_service,
    write_result,
)
from ingest import DistinctBodies, run_level  # noqa: E402
from pipeline import TARGET_BYTES, bench_lag, stack_from_env  # noqa: E402

import sqlalchemy as sa  # noqa: E402

from tests.e2e.distributed import Daemon, Stack  # noqa: E402

MAX_RATE_THREADS = 16
SAMPLE_SECONDS = 10.0
PROGRESS_SECONDS = 30.0
COMPACT_INTERVAL = "5"
WARMUP_POSTS = 200
INDEXED_TIMEOUT = 120.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="how long the paced ingest runs")
    ap.add_argument("--rate", type=float, help="profiles/s of the soak (default: half the measured max rate)")
    ap.add_argument("--max-requests", type=int, default=1000,
                    help=f"POSTs of the max-rate measure at {MAX_RATE_THREADS} threads")
    args = ap.parse_args(argv)
    try:
        if not 0.1 <= args.minutes <= 24 * 60:
            raise BenchError("--minutes: between 0.1 and 1440")
        if args.rate is not None and not 0.1 <= args.rate <= 10_000:
            raise BenchError("--rate: between 0.1 and 10000 profiles/s")
        if not 100 <= args.max_requests <= 100_000:
            raise BenchError("--max-requests: between 100 and 100000")
        stack = stack_from_env()
        bodies = DistinctBodies(closest_fixture("cpu-*.pb.gz", TARGET_BYTES).read_bytes())
        body = bodies()
    except BenchError as exc:
        print(f"soak bench: {exc}", file=sys.stderr)
        return 2

    seconds = args.minutes * 60
    result: dict = {"bench": "soak", "machine": machine(), "profile_bytes": len(body), "minutes": args.minutes}
    try:
        daemons = start_pipeline(stack)
        ingest, query = daemons["ingest-api"], daemons["query-api"]
        base, qbase = loopback_base(ingest.url), loopback_base(query.url)
        print(f"daemons: {', '.join(f'{n} pid {d.proc.pid}' for n, d in daemons.items())};"
              f" topic profefe-{stack.name}")

        # The max-rate measure (or, with --rate, a few POSTs) warms the daemons up; the soak starts
        # once all of it is indexed, so neither a backlog nor the indexers' group join is timed.
        threads, posts = (MAX_RATE_THREADS, args.max_requests) if args.rate is None else (4, WARMUP_POSTS)
        target = "/api/0/profiles?" + urllib.parse.urlencode({"service": run_service("soak-warm"), "type": "cpu"})
        row = run_level(base, target, bodies, threads, posts, 120.0)
        if row["failed"]:  # half of a rate measured through an outage would be no one's max
            raise BenchError(f"{row['failed']} of {row['sent']} POSTs before the soak failed ({row['errors']});"
                             " is a service down? (`scripts/services.sh status`)")
        if args.rate is None:
            result["max_rate"] = row
            rate = row["profiles_per_s"] / 2
            print(f"max rate at {threads} threads: {row['profiles_per_s']:.1f} profiles/s"
                  f" ({row['ok']} ok, {row['failed']} failed); soak at half: {rate:.1f} profiles/s")
        else:
            result["warmup"] = row
            rate = args.rate
        result["target_rate"] = rate
        wait_indexed(stack, row["ok"])

        memory = Memory(daemons)
        memory.sample("start")
        gone = [n for n in daemons if n not in memory.start]
        if gone:
            raise BenchError(f"exited before the soak: {', '.join(gone)} (logs under {stack.workdir})")
        print(f"rss at start (MB): {', '.join(f'{n} {memory.start[n]:.0f}' for n in daemons)}")
        progress = Progress(memory, daemons)
        lag = bench_lag(base, qbase, bodies, rate=rate, seconds=seconds, on_tick=progress.tick,
                        tick_seconds=SAMPLE_SECONDS, kind="soak")
        memory.sample("end")
        result["lag"] = lag
        result["rss_mb"] = memory.report()
        result["exited_during_soak"] = progress.exited
        result["daemon_exit_codes"] = {name: d.stop() for name, d in stop_order(daemons)}
        stack.daemons.clear()
        result["machine_after"] = machine()
    except (BenchError, AssertionError) as exc:  # the Stack helpers assert, with the daemon's log
        print(f"soak bench: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.close()

    print_report(result)
    path = write_result("soak", result)
    print(f"wrote {path.relative_to(ROOT)}")
    return 0 if passed(result) else 1


def start_pipeline(stack: Stack) -> dict[str, Daemon]:
    """migrate, then the five daemons, each ready (APIs answer /readyz, workers log their start)."""
    stack.migrate()
    daemons = {
        "query-api": stack.start("query-api"),
        "ingest-api": stack.start("ingest-api"),
        "indexer-1": stack.start("indexer"),
        "indexer-2": stack.start("indexer"),
        "compactor": stack.start("compactor", PROFEFE_COMPACT_INTERVAL=COMPACT_INTERVAL),
    }
    for d in daemons.values():
        stack.wait_ready(d)
    return daemons


def wait_indexed(stack: Stack, at_least: int) -> None:
    """Until the database holds `at_least` profiles (run_level's own warm-up POSTs come on top)."""
    deadline = time.monotonic() + INDEXED_TIMEOUT
    with stack.db.engine.connect() as conn:
        while True:
            count = conn.execute(sa.text("SELECT count(*) FROM profiles")).scalar_one()
            conn.commit()
            if count >= at_least:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"{count} of {at_least} profiles indexed after {INDEXED_TIMEOUT:.0f}s")
            time.sleep(0.2)


def stop_order(daemons: dict[str, Daemon]) -> list[tuple[str, Daemon]]:
    """APIs first, so nothing new arrives while the workers finish what they hold."""
    return sorted(daemons.items(), key=lambda kv: kv[1].is_worker)


class Memory:
    """Resident set of each daemon's process tree, in MB: at start, the peak of all samples, at end."""

    def __init__(self, daemons: dict[str, Daemon]) -> None:
        self.daemons = daemons
        self.start: dict[str, float] = {}
        self.peak: dict[str, float] = {}
        self.end: dict[str, float] = {}
        self.processes: dict[str, int] = {}

    def sample(self, moment: str = "during") -> None:
        for name, d in self.daemons.items():
            pids = process_tree(d.proc.pid) if d.proc.poll() is None else []
            if not pids:  # exited: its end is reported as missing, not as 0 MB
                continue
            mb = sum(rss_kb(p) for p in pids) / 1024
            self.processes[name] = max(self.processes.get(name, 0), len(pids))
            self.peak[name] = max(self.peak.get(name, 0.0), mb)
            if moment == "start":
                self.start[name] = mb
            elif moment == "end":
                self.end[name] = mb

    def report(self) -> dict[str, dict]:
        """MB by daemon; `end` and `growth` are None for a daemon that had exited by the end."""
        rows = {}
        for name in self.daemons:
            end = self.end.get(name)
            rows[name] = {"start": round(self.start[name], 1), "peak": round(self.peak[name], 1),
                          "end": None if end is None else round(end, 1),
                          "growth": None if end is None else round(end - self.start[name], 1),
                          "processes": self.processes[name]}
        return rows


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0  # exited, or a zombie (which has no VmRSS line)


class Progress:
    """bench_lag's tick: a memory sample every tick, a line every PROGRESS_SECONDS, exits noted."""

    def __init__(self, memory: Memory, daemons: dict[str, Daemon]) -> None:
        self.memory = memory
        self.daemons = daemons
        self.next_line = PROGRESS_SECONDS
        self.exited: dict[str, int] = {}

    def tick(self, snap: dict) -> None:
        self.memory.sample()
        for name, d in self.daemons.items():
            code = d.proc.poll()
            if code is not None and name not in self.exited:
                self.exited[name] = code
                print(f"  {name} exited with {code} during the soak (log {d.log_path})")
        if snap["elapsed"] >= self.next_line:
            self.next_line += PROGRESS_SECONDS
            peak = max(self.memory.peak.items(), key=lambda kv: kv[1])
            print(f"  {snap['elapsed']:>5.0f}s  acknowledged {snap['acknowledged']}  failed {snap['failed']}"
                  f"  pending {snap['pending']}  lag p99 {snap['lag_p99_ms']:.0f} ms"
                  f"  largest rss {peak[0]} {peak[1]:.0f} MB", flush=True)


def print_report(result: dict) -> None:
    lag = result["lag"]
    print(f"\nsoak: {result['minutes']:g} min at {result['target_rate']:.1f} profiles/s"
          f" (achieved {lag['achieved_rate']:.1f})")
    print(f"  acknowledged {lag['acknowledged']}, failed {lag['failed']}"
          + "".join(f", {n} x {kind}" for kind, n in sorted(lag["failures"].items())))
    print(f"  never visible {lag['not_visible']}, visible too late to time {lag['seen_late_unmeasured']}")
    print(f"  index lag p50 {lag['lag_p50_ms']:.0f} ms, p99 {lag['lag_p99_ms']:.0f} ms, max {lag['lag_max_ms']:.0f} ms")
    print(f"\n{'daemon':<11} {'start MB':>9} {'peak MB':>8} {'end MB':>7} {'growth':>7} {'exit':>5}")
    for name, mb in result["rss_mb"].items():
        end, growth = ("gone", "") if mb["end"] is None else (f"{mb['end']:.1f}", f"{mb['growth']:+.1f}")
        print(f"{name:<11} {mb['start']:>9.1f} {mb['peak']:>8.1f} {end:>7} {growth:>7}"
              f" {result['daemon_exit_codes'][name]:>5}")
    print(f"\nload average before {result['machine']['loadavg_1m_5m_15m']},"
          f" after {result['machine_after']['loadavg_1m_5m_15m']}")


def passed(result: dict) -> bool:
    lag = result["lag"]
    return (lag["failed"] == 0 and lag["not_visible"] == 0
            and all(code == 0 for code in result["daemon_exit_codes"].values()))


if __name__ == "__main__":
    sys.exit(main())
