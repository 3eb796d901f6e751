"""Benchmarks of the pprof library on the real fixtures: parse throughput and merge cost.

    .venv/bin/python bench/pprof_bench.py            # or: make bench

Prints a table and saves it as JSON under bench/results/. Cases:
- parse: MB/s of decompressed protobuf, per fixture type (gunzip + decode + validation);
- merge of 60 and of 1,440 CPU profiles (an hour and a day of one-minute profiles), built by
  cycling through tests/testdata/cpu-*.pb.gz with time_nanos rewritten, each run in a fresh
  subprocess that reads, parses, merges and writes, so its wall time and peak RSS are its own;
- `go tool pprof -proto` merging the same 60 files, timed the same way (its tool binary run
  directly, so the `go` launcher's own start-up is not counted against it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.pprof import Merger, parse, write  # noqa: E402
from shared.pprof.parse import decompress  # noqa: E402

TESTDATA = ROOT / "tests" / "testdata"
RESULTS = ROOT / "bench" / "results"
MINUTE_NS = 60 * 10**9


def bench_parse(min_seconds: float = 1.0) -> dict[str, dict[str, float]]:
    out = {}
    kinds = sorted({p.name.split("-")[0] for p in TESTDATA.glob("*.pb.gz")})
    for kind in kinds:
        blobs = [p.read_bytes() for p in sorted(TESTDATA.glob(f"{kind}-*.pb.gz"))]
        raw_bytes = sum(len(decompress(b)) for b in blobs)
        rounds, start, cpu_start = 0, time.perf_counter(), time.process_time()
        while True:
            for b in blobs:
                parse(b)
            rounds += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        cpu = time.process_time() - cpu_start
        out[kind] = {
            "profiles": len(blobs),
            "avg_gzip_bytes": sum(map(len, blobs)) / len(blobs),
            "avg_decompressed_bytes": raw_bytes / len(blobs),
            "ms_per_profile": elapsed / (rounds * len(blobs)) * 1e3,
            "cpu_ms_per_profile": cpu / (rounds * len(blobs)) * 1e3,
            "decompressed_mb_per_s": raw_bytes * rounds / elapsed / 1e6,
            "decompressed_mb_per_cpu_s": raw_bytes * rounds / cpu / 1e6,
        }
    return out


def make_inputs(directory: Path, count: int) -> list[Path]:
    """`count` CPU profiles one minute apart, cycling through the real CPU fixtures."""
    sources = sorted(TESTDATA.glob("cpu-*.pb.gz"))
    if not sources:
        raise SystemExit("no CPU fixtures under tests/testdata (run scripts/gen_fixtures.sh)")
    profiles = [parse(p.read_bytes()) for p in sources]
    base = min(p.time_nanos for p in profiles)
    paths = []
    for i in range(count):
        p = profiles[i % len(profiles)]
        p.time_nanos = base + i * MINUTE_NS
        path = directory / f"cpu-{i:05d}.pb.gz"
        path.write_bytes(write(p))
        paths.append(path)
    return paths


def merge_child(list_file: Path, output: Path) -> None:
    """Run in a fresh interpreter: merge the files named in `list_file`, print JSON stats."""
    paths = list_file.read_text().split()
    start, cpu_start = time.perf_counter(), time.process_time()
    merger = Merger()
    samples = 0
    for path in paths:
        p = parse(Path(path).read_bytes())
        samples += len(p.sample)
        merger.add(p)
    merged = merger.result()
    output.write_bytes(write(merged))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(
        json.dumps(
            {
                "in_process_seconds": elapsed,
                "in_process_cpu_seconds": cpu,
                "input_samples": samples,
                "merged_samples": len(merged.sample),
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def timed_child(argv: list[str]) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one command, run from a fresh wrapper.

    CPU seconds (user + system, all threads) are the fairer comparison on a busy machine, where
    wall time mostly measures how much of a core the process was given.
    """
    wrapper = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "wall = time.perf_counter() - t\n"
        "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps({'wall': wall, 'rss': ru.ru_maxrss / 1024, 'cpu': ru.ru_utime + ru.ru_stime,"
        " 'rc': done.returncode,"
        " 'stdout': done.stdout, 'stderr': done.stderr}))\n"
    )
    done = subprocess.run([sys.executable, "-c", wrapper, *argv], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    if result["rc"] != 0:
        raise SystemExit(f"{argv[:3]} failed: {result['stderr']}")
    return result["wall"], result["cpu"], result["rss"], result["stdout"]


def bench_merge(work: Path, count: int) -> dict[str, float]:
    paths = make_inputs(work, count)
    list_file = work / f"inputs-{count}.txt"
    list_file.write_text("\n".join(map(str, paths)))
    wall, cpu, rss, stdout = timed_child(
        [sys.executable, __file__, "--merge-child", str(list_file), str(work / f"merged-{count}.pb.gz")]
    )
    child = json.loads(stdout)
    return {
        "profiles": count,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "in_process_seconds": child["in_process_seconds"],
        "input_samples": child["input_samples"],
        "merged_samples": child["merged_samples"],
        "in_process_cpu_seconds": child["in_process_cpu_seconds"],
        "samples_per_second": child["input_samples"] / child["in_process_seconds"],
        "samples_per_cpu_second": child["input_samples"] / child["in_process_cpu_seconds"],
        "peak_rss_mib": rss,
    }


def cprofile_merge(count: int) -> None:
    """Where a merge of `count` CPU profiles (parse included) spends its time."""
    import cProfile
    import pstats

    with tempfile.TemporaryDirectory(prefix="pprof-bench-") as tmp:
        blobs = [p.read_bytes() for p in make_inputs(Path(tmp), count)]

    def run() -> None:
        merger = Merger()
        for b in blobs:
            merger.add(parse(b))
        write(merger.result())

    profiler = cProfile.Profile()
    profiler.runcall(run)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


def pprof_tool() -> str | None:
    go = shutil.which("go")
    if go is None:
        return None
    done = subprocess.run([go, "tool", "-n", "pprof"], capture_output=True, text=True)
    return done.stdout.strip() or None if done.returncode == 0 else None


def bench_go_merge(work: Path, count: int, tool: str) -> dict[str, float]:
    paths = sorted(work.glob("cpu-*.pb.gz"))[:count]
    output = work / f"go-merged-{count}.pb.gz"
    wall, cpu, rss, _ = timed_child([tool, "-proto", f"-output={output}", *map(str, paths)])
    return {"profiles": count, "wall_seconds": wall, "cpu_seconds": cpu, "peak_rss_mib": rss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--merge-child", nargs=2, metavar=("LIST", "OUTPUT"), help=argparse.SUPPRESS)
    ap.add_argument(
        "--cprofile",
        type=int,
        metavar="N",
        help="only run cProfile on a merge of N CPU profiles and print it",
    )
    args = ap.parse_args()
    if args.merge_child:
        merge_child(Path(args.merge_child[0]), Path(args.merge_child[1]))
        return
    if args.cprofile:
        cprofile_merge(args.cprofile)
        return

    results: dict[str, object] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": f"{platform.machine()} x{os.cpu_count()}",
    }
    results["parse"] = parse_results = bench_parse()
    print(
        f"{'parse':13s} {'profiles':>8s} {'gz KB':>6s} {'raw KB':>7s} {'ms/profile':>11s} {'cpu ms':>7s} "
        f"{'MB/s raw':>9s} {'MB/cpu-s':>9s}"
    )
    for kind, r in parse_results.items():
        print(
            f"{kind:13s} {r['profiles']:8d} {r['avg_gzip_bytes'] / 1e3:6.1f} "
            f"{r['avg_decompressed_bytes'] / 1e3:7.1f} {r['ms_per_profile']:11.2f} {r['cpu_ms_per_profile']:7.2f} "
            f"{r['decompressed_mb_per_s']:9.1f} {r['decompressed_mb_per_cpu_s']:9.1f}"
        )

    merges = {}
    with tempfile.TemporaryDirectory(prefix="pprof-bench-") as tmp:
        work = Path(tmp)
        for count in (60, 1440):
            merges[f"ours_{count}"] = bench_merge(work, count)
        tool = pprof_tool()
        if tool:
            merges["go_tool_pprof_60"] = bench_go_merge(work, 60, tool)
    results["merge"] = merges
    print()
    print(
        f"{'merge':22s} {'wall s':>8s} {'cpu s':>8s} {'in-proc s':>10s} {'samples/s':>11s} {'peak RSS MiB':>13s}"
    )
    for name, r in merges.items():
        in_proc = f"{r['in_process_seconds']:10.3f}" if "in_process_seconds" in r else f"{'-':>10s}"
        rate = f"{r['samples_per_second']:11.0f}" if "samples_per_second" in r else f"{'-':>11s}"
        print(
            f"{name:22s} {r['wall_seconds']:8.3f} {r['cpu_seconds']:8.3f} {in_proc} {rate} {r['peak_rss_mib']:13.1f}"
        )
    if "go_tool_pprof_60" not in merges:
        print("go tool pprof: not found (install Go to compare)")
    else:
        ours, go = merges["ours_60"], merges["go_tool_pprof_60"]
        print(
            f"ours/go, 60 profiles: wall {ours['wall_seconds'] / go['wall_seconds']:.2f}x, "
            f"cpu {ours['cpu_seconds'] / go['cpu_seconds']:.2f}x"
        )
    growth = merges["ours_1440"]["peak_rss_mib"] / merges["ours_60"]["peak_rss_mib"]
    print(f"peak RSS 1,440 vs 60 profiles: {growth:.2f}x")

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"pprof-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
