"""WindowBuilder benchmark: 7 days of one-per-minute CPU profiles, compacted, then merged by
`profefe serve` with and without windows.

Loading goes straight through the ports of an embedded data folder (the indexer step: blob, then
rows), which is faster than HTTP and is not what is measured here. The profiles are the real
fixtures tests/testdata/cpu-*.pb.gz with `time_nanos` rewritten, spread over a few label sets.
Then the compactor runs until nothing is due (profiles/s reported), and `profefe serve` is
started as a subprocess on that folder, a fresh process per case, to time `/merge` over 1 hour,
24 hours and 7 days with windows and with `PROFEFE_MERGE_WINDOWS=0`; the peak RSS of each query
process is read from /proc/<pid>/status (VmHWM) after its one merge.

    .venv/bin/python bench/compaction.py [--days 7] [--data-dir DIR] [--reuse]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import TESTDATA, BenchError, machine, write_result  # noqa: E402
from tests.e2e.embedded import free_port, profefe_command  # noqa: E402

LABEL_SETS = ["env=prod,zone=a", "env=prod,zone=b", "env=canary"]
SERVICE = "checkout"
PROFEFE_81S = 81.0  # profefe (Go) merging the same 7 days, for comparison


def load(data_dir: Path, days: int, end: int) -> int:
    from services import wiring
    from services.roles import ServeRole
    from services.indexer.steps import index
    from shared import pprof
    from shared.model import IngestRecord, Labels, ProfileType, from_unix, new_id

    ports = wiring.open_embedded(ServeRole(data_dir=data_dir))
    fixtures = [pprof.parse((TESTDATA / f"cpu-{i}.pb.gz").read_bytes()) for i in range(1, 11)]
    signature = pprof.check((TESTDATA / "cpu-1.pb.gz").read_bytes()).signature
    labels = [Labels.parse(x) for x in LABEL_SETS]
    start = end - days * 86400
    batch, n = [], 0
    try:
        for i, at in enumerate(range(start, end, 60)):
            p = fixtures[i % len(fixtures)]
            p.time_nanos = at * 1_000_000_000
            moment = from_unix(at)
            batch.append(IngestRecord(id=new_id(at), service=SERVICE, type=ProfileType.CPU,
                                      labels=labels[i % len(labels)], created_at=moment, received_at=moment,
                                      body=pprof.write(p), signature=signature))
            if len(batch) == 500:
                index(batch, ports.blobs, ports.meta)
                n += len(batch)
                batch = []
        index(batch, ports.blobs, ports.meta)
        n += len(batch)
    finally:
        ports.close()
    return n


def compact(data_dir: Path, now: int) -> dict:
    from services import wiring
    from services.compactor.config import CompactorConfig
    from services.compactor.worker import Compactor
    from services.roles import ServeRole

    ports = wiring.open_embedded(ServeRole(data_dir=data_dir))
    try:
        # Retention far away: this measures compaction, and the raw merge needs every profile.
        compactor = Compactor(ports.windows, ports.blobs,
                              CompactorConfig(raw_retention=365 * 86400, window_retention=365 * 86400),
                              clock=lambda: now)
        started, cpu = time.perf_counter(), time.process_time()
        report = compactor.run_pass()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "hourly": report.hours, "daily": report.days,
                "failed": report.failed, "pending_after": len(report.pending)}
    finally:
        ports.close()


def merge_case(data_dir: Path, start: int, end: int, windows: bool, log: Path) -> dict:
    """One fresh `profefe serve` (compactor off), one merge, its time and the process's peak RSS."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROFEFE_")}
    env["PROFEFE_MERGE_WINDOWS"] = "1" if windows else "0"
    cmd = [*profefe_command(), "serve", "--addr", f"127.0.0.1:{port}",
           "--data-dir", str(data_dir), "--compact-interval", "0", "--max-merge-profiles", "100000"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/api/0/version", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"profefe serve did not start; see {log}") from None
                time.sleep(0.2)
        urllib.request.urlopen(base + "/api/0/services", timeout=30).read()  # opens the database pool
        fmt = "%Y-%m-%dT%H:%M:%S"
        q = (f"/api/0/profiles/merge?service={SERVICE}&type=cpu"
             f"&from={datetime.fromtimestamp(start, timezone.utc).strftime(fmt)}"
             f"&to={datetime.fromtimestamp(end, timezone.utc).strftime(fmt)}")
        started = time.perf_counter()
        with urllib.request.urlopen(base + q, timeout=1800) as resp:
            data = resp.read()
        seconds = time.perf_counter() - started
        return {"seconds": round(seconds, 3), "bytes": len(data), "peak_rss_mb": round(_vm_hwm_kb(proc.pid) / 1024, 1)}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _vm_hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise BenchError("no VmHWM in /proc/<pid>/status")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--data-dir", type=Path, default=None, help="default: a fresh temporary folder")
    ap.add_argument("--reuse", action="store_true", help="the data folder is loaded and compacted already")
    ap.add_argument("--no-merges", action="store_true", help="load and compact only")
    args = ap.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="profefe-bench-compaction-"))
    end = datetime(2026, 11, 2, tzinfo=timezone.utc).timestamp()
    end = int(end)
    result: dict = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": machine(),
                    "data_dir": str(data_dir), "days": args.days, "label_sets": LABEL_SETS}
    log = data_dir.parent / (data_dir.name + "-serve.log")
    if not args.reuse:
        started = time.perf_counter()
        n = load(data_dir, args.days, end)
        load_s = time.perf_counter() - started
        result["load"] = {"profiles": n, "seconds": round(load_s, 1), "via": "ports (indexer step), not HTTP"}
        print(f"loaded {n} profiles in {load_s:.1f}s (through the ports, not HTTP)", flush=True)
        c = compact(data_dir, end + 3600)
        c["profiles_per_s"] = round(n / c["seconds"], 1)
        c["profiles_per_cpu_s"] = round(n / c["cpu_seconds"], 1)
        result["compaction"] = c
        print(f"compacted: {c['hourly']} hourly + {c['daily']} daily windows in {c['seconds']}s "
              f"= {c['profiles_per_s']} profiles/s ({c['cpu_seconds']} s of CPU: "
              f"{c['profiles_per_cpu_s']} profiles per CPU second, load average {os.getloadavg()[0]:.1f})", flush=True)
    cases = []
    if args.no_merges:
        print(f"wrote {write_result('compaction', result)}")
        return 0
    week = args.days * 86400
    # Aligned ranges (whole hours and days), and a week cut mid-hour at both ends, where the
    # partial hours come from raw profiles and the partial days from hourly windows.
    for name, start, stop in (("1h", end - 3600, end - 1), ("24h", end - 86400, end - 1),
                              ("7d", end - week, end - 1), ("7d-ragged", end - week + 1800, end - 1801)):
        row = {"range": name}
        for windows in (True, False):
            r = merge_case(data_dir, start, stop, windows, log)
            row["windows" if windows else "raw"] = r
            print(f"  {name:>9} {'windows' if windows else 'raw':>7}: {r['seconds']:8.3f}s  "
                  f"peak RSS {r['peak_rss_mb']:7.1f} MB  {r['bytes']} bytes", flush=True)
        row["speedup"] = round(row["raw"]["seconds"] / row["windows"]["seconds"], 1)
        cases.append(row)
    result["merge"] = cases
    aligned_week = cases[2]
    result["vs_profefe_81s"] = round(PROFEFE_81S / aligned_week["windows"]["seconds"], 1)
    print()
    print(f"{'range':>9} {'windows s':>10} {'raw s':>10} {'speedup':>8} {'RSS win MB':>11} {'RSS raw MB':>11}")
    for row in cases:
        print(f"{row['range']:>9} {row['windows']['seconds']:>10.3f} {row['raw']['seconds']:>10.3f} "
              f"{row['speedup']:>7.1f}x {row['windows']['peak_rss_mb']:>11.1f} {row['raw']['peak_rss_mb']:>11.1f}")
    print(f"7-day merge with windows vs profefe's {PROFEFE_81S:.0f}s: {result['vs_profefe_81s']}x")
    print(f"results: {write_result('compaction', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
