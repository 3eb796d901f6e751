"""Benchmarks of the pprof library: parse/check cost, merge cost against `go tool pprof`, memory.

    .venv/bin/python bench/pprof_bench.py                 # or: make bench
    .venv/bin/python bench/pprof_bench.py --repeat 5 --week

Prints a table and saves it as JSON under bench/results/. Cases:
- parse: per fixture type, ms and CPU ms per profile (gunzip + decode + checks + Profile);
- cpu-50k: a synthetic production-like CPU profile (1,500 samples, 2,000 locations):
  `parse`, `check` (what ingest needs, no Profile built), and `check` from 2 threads at once
  (the native core releases the GIL, so this shows whether threads use both cores);
- merge of 60 and of 1,440 CPU profiles (an hour and a day of one-minute profiles), built by
  cycling through tests/testdata/cpu-*.pb.gz with time_nanos rewritten, each run in a fresh
  subprocess (bench/_merge_child.py, which imports only the library) so its wall time and peak
  RSS are its own, in two ways: `bytes` (stored bytes
  added to a Merger, Merger.write: the merge never leaves the native core) and `parsed`
  (parse -> Merger.add(Profile) -> write(result())), against `go tool pprof -proto` on the same
  files (its tool binary run directly, so the `go` launcher's start-up is not counted);
- with --week: the same for 10,080 profiles (a week), for its peak RSS.
A merge case reports the process wall time (Python start-up and imports included) and the
in-process wall time of the merge alone, which is what a running service pays.
Every merge case runs --repeat times, the cases interleaved, so a burst of load from elsewhere
hits them alike; ranges (min, median, max) are reported with the load average.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import TESTDATA, machine, write_result  # noqa: E402  (puts the repo on sys.path)

from shared.pprof import Profile, check, parse, write  # noqa: E402
from shared.pprof.parse import decompress  # noqa: E402

MINUTE_NS = 60 * 10**9
MERGE_CHILD = Path(__file__).resolve().parent / "_merge_child.py"


def synthetic_cpu(seed: int = 1) -> bytes:
    """A gzip CPU profile shaped like a busy Go service's: one binary, 1,200 functions in 150
    files, 2,000 locations (a fifth with an inlined frame), 1,500 distinct stacks 8-40 frames
    deep that share their callers, as paths of a call tree do."""
    rng = random.Random(seed)
    p = Profile()
    strings: dict[str, int] = {"": 0}

    def s(text: str) -> int:
        return strings.setdefault(text, len(strings))

    p.sample_type.add(type=s("samples"), unit=s("count"))
    p.sample_type.add(type=s("cpu"), unit=s("nanoseconds"))
    p.period_type.type, p.period_type.unit = s("cpu"), s("nanoseconds")
    p.period = 10_000_000
    p.time_nanos = 1_700_000_000 * 10**9
    p.duration_nanos = 60 * 10**9
    p.mapping.add(id=1, memory_start=0x400000, memory_limit=0x2400000, filename=s("/usr/local/bin/service"),
                  build_id=s("b6a3f0c1d2e4"), has_functions=True, has_filenames=True, has_line_numbers=True)
    files = [f"/src/acme/svc/pkg{i % 40}/f{i}.go" for i in range(150)]
    for fid in range(1, 1201):
        name = s(f"acme/svc/pkg{fid % 40}.(*T{fid % 97}).M{fid}")
        p.function.add(id=fid, name=name, system_name=name, filename=s(files[fid % len(files)]),
                       start_line=10 + fid % 500)
    for lid in range(1, 2001):
        loc = p.location.add(id=lid, mapping_id=1, address=0x400000 + lid * 0x40 + 0x13)
        for k in range(1 if rng.random() < 0.8 else 2):
            fid = (lid * 3 // 5 + k) % 1200 + 1  # neighbouring locations are in one function
            loc.line.add(function_id=fid, line=10 + fid % 500 + lid % 30)
    # Each stack grows from a prefix of an earlier one, its callees near their callers.
    paths: list[list[int]] = [[rng.randrange(1, 2001)] for _ in range(8)]
    stacks: set[tuple[int, ...]] = set()
    while len(stacks) < 1500:
        parent = rng.choice(paths)
        path = parent[: rng.randrange(1, len(parent) + 1)]
        for _ in range(rng.randrange(1, 8)):
            path.append((path[-1] + rng.randrange(1, 400)) % 2000 + 1)
        if len(path) > 40:
            continue
        paths.append(path)
        if len(path) >= 8:
            stacks.add(tuple(reversed(path)))  # leaf first
    for stack in sorted(stacks):
        n = 1 + int(rng.paretovariate(1.5))
        p.sample.add(location_id=stack, value=[n, n * 10_000_000])
    p.string_table.extend(strings)
    return write(p, level=6)  # as agents send it


def per_call(fn, blobs: list[bytes], min_seconds: float) -> tuple[float, float]:
    """(wall ms, CPU ms) per call of fn over `blobs`, over at least `min_seconds`."""
    calls, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < min_seconds:
        for b in blobs:
            fn(b)
        calls += len(blobs)
    return (time.perf_counter() - start) / calls * 1e3, (time.process_time() - cpu_start) / calls * 1e3


def threaded_rate(fn, blob: bytes, threads: int, seconds: float) -> float:
    """Calls per second of fn(blob) from `threads` threads at once."""
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def loop(i: int) -> None:
        while time.perf_counter() < stop:
            fn(blob)
            counts[i] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) / seconds


def bench_parse(min_seconds: float) -> dict[str, dict[str, float]]:
    out = {}
    kinds = sorted({p.name.split("-")[0] for p in TESTDATA.glob("*.pb.gz")})
    for kind in kinds:
        blobs = [p.read_bytes() for p in sorted(TESTDATA.glob(f"{kind}-*.pb.gz"))]
        ms, cpu_ms = per_call(parse, blobs, min_seconds)
        out[kind] = {"profiles": len(blobs), "avg_gzip_bytes": sum(map(len, blobs)) / len(blobs),
                     "avg_decompressed_bytes": sum(len(decompress(b)) for b in blobs) / len(blobs),
                     "ms_per_profile": ms, "cpu_ms_per_profile": cpu_ms}
    return out


def bench_synthetic(min_seconds: float) -> dict[str, float]:
    blob = synthetic_cpu()
    p = parse(blob)
    out: dict[str, float] = {"gzip_bytes": len(blob), "decompressed_bytes": len(decompress(blob)),
                             "samples": len(p.sample), "locations": len(p.location), "functions": len(p.function)}
    out["parse_ms"], out["parse_cpu_ms"] = per_call(parse, [blob], min_seconds)
    out["check_ms"], out["check_cpu_ms"] = per_call(check, [blob], min_seconds)
    out["check_per_s_1_thread"] = threaded_rate(check, blob, 1, min_seconds)
    out["check_per_s_2_threads"] = threaded_rate(check, blob, 2, min_seconds)
    return out


def make_inputs(directory: Path, count: int) -> list[Path]:
    """`count` CPU profiles one minute apart, cycling through the real CPU fixtures."""
    sources = sorted(TESTDATA.glob("cpu-*.pb.gz"))
    if not sources:
        raise SystemExit("no CPU fixtures under tests/testdata (run scripts/gen_fixtures.sh)")
    profiles = [parse(p.read_bytes()) for p in sources]
    base = min(p.time_nanos for p in profiles)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        p = profiles[i % len(profiles)]
        p.time_nanos = base + i * MINUTE_NS
        path = directory / f"cpu-{i:05d}.pb.gz"
        path.write_bytes(write(p))
        paths.append(path)
    return paths


def timed_child(argv: list[str]) -> dict:
    """Wall seconds, CPU seconds (user + system, all threads) and peak RSS (MiB) of a command,
    run from a fresh wrapper so the numbers are its own."""
    wrapper = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "wall = time.perf_counter() - t\n"
        "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps({'wall': wall, 'rss': ru.ru_maxrss / 1024, 'cpu': ru.ru_utime + ru.ru_stime,"
        " 'rc': done.returncode, 'stdout': done.stdout, 'stderr': done.stderr}))\n"
    )
    done = subprocess.run([sys.executable, "-c", wrapper, *argv], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    if result["rc"] != 0:
        raise SystemExit(f"{argv[:3]} failed: {result['stderr']}")
    out = {"wall_seconds": result["wall"], "cpu_seconds": result["cpu"], "peak_rss_mib": result["rss"]}
    if result["stdout"].startswith("{"):
        out.update(json.loads(result["stdout"]))  # our merge child's own timing
    return out


def pprof_tool() -> str | None:
    go = shutil.which("go")
    if go is None:
        return None
    done = subprocess.run([go, "tool", "-n", "pprof"], capture_output=True, text=True)
    return done.stdout.strip() or None if done.returncode == 0 else None


def merge_cases(work: Path, counts: list[int], tool: str | None, go_counts: set[int]) -> dict[str, list[str]]:
    """Each merge case's command line, keyed "<who>_<count>"."""
    cases = {}
    for count in counts:
        paths = make_inputs(work / str(count), count)
        list_file = work / f"inputs-{count}.txt"
        list_file.write_text("\n".join(map(str, paths)))
        for way in ("bytes", "parsed"):
            cases[f"ours_{way}_{count}"] = [sys.executable, str(MERGE_CHILD), way, str(list_file),
                                            str(work / f"merged-{way}-{count}.pb.gz")]
        if tool and count in go_counts:
            cases[f"go_tool_pprof_{count}"] = [tool, "-proto", f"-output={work}/go-merged-{count}.pb.gz",
                                               *map(str, paths)]
    return cases


def summary(runs: list[dict]) -> dict:
    out = {}
    for key in ("wall_seconds", "cpu_seconds", "peak_rss_mib", "in_process_seconds"):
        values = sorted(r[key] for r in runs if key in r)
        if not values:
            continue
        out[key] = {"min": values[0], "median": statistics.median(values), "max": values[-1]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each merge case, interleaved")
    ap.add_argument("--seconds", type=float, default=1.0, help="time spent on each parse/check case")
    ap.add_argument("--week", action="store_true", help="also merge 10,080 profiles (a week)")
    args = ap.parse_args()
    results: dict[str, object] = {"machine_before": machine()}
    results["parse"] = parsed = bench_parse(args.seconds)
    print(f"{'parse':13s} {'profiles':>8s} {'gz KB':>6s} {'raw KB':>7s} {'ms/profile':>11s} {'cpu ms':>7s}")
    for kind, r in parsed.items():
        print(f"{kind:13s} {r['profiles']:8d} {r['avg_gzip_bytes'] / 1e3:6.1f} "
              f"{r['avg_decompressed_bytes'] / 1e3:7.1f} {r['ms_per_profile']:11.3f} {r['cpu_ms_per_profile']:7.3f}")
    results["cpu_50k"] = syn = bench_synthetic(args.seconds)
    print(f"\ncpu-50k: {syn['gzip_bytes'] / 1e3:.1f} KB gzip, {syn['decompressed_bytes'] / 1e3:.1f} KB raw, "
          f"{syn['samples']} samples, {syn['locations']} locations, {syn['functions']} functions")
    print(f"  parse {syn['parse_ms']:.3f} ms ({syn['parse_cpu_ms']:.3f} CPU ms); "
          f"check {syn['check_ms']:.3f} ms ({syn['check_cpu_ms']:.3f} CPU ms); checks/s from 1 thread "
          f"{syn['check_per_s_1_thread']:.0f}, from 2 threads {syn['check_per_s_2_threads']:.0f}")

    counts = [60, 1440] + ([10080] if args.week else [])
    with tempfile.TemporaryDirectory(prefix="pprof-bench-") as tmp:
        tool = pprof_tool()
        cases = merge_cases(Path(tmp), counts, tool, {60, 1440})
        runs: dict[str, list[dict]] = {name: [] for name in cases}
        for _ in range(args.repeat):
            for name, argv in cases.items():
                runs[name].append(timed_child(argv))
    results["merge"] = merges = {name: {"profiles": int(name.rsplit("_", 1)[1]), "runs": r, **summary(r)}
                                 for name, r in runs.items()}
    results["machine_after"] = machine()
    # Process wall includes starting Python and importing the library (~0.2-0.3 s here); the
    # in-process wall is the merge alone, what a running service pays.
    print(f"\n{'merge: min median max':22s} {'process wall s':>23s}  {'in-process wall s':>23s}  "
          f"{'cpu s':>23s}  {'peak RSS MiB':>12s}")
    for name, r in merges.items():
        w, c, m = r["wall_seconds"], r["cpu_seconds"], r["peak_rss_mib"]
        i = r.get("in_process_seconds")
        inside = f"{i['min']:7.3f} {i['median']:7.3f} {i['max']:7.3f}" if i else f"{'-':>23s}"
        print(f"{name:22s} {w['min']:7.3f} {w['median']:7.3f} {w['max']:7.3f}  {inside}  "
              f"{c['min']:7.3f} {c['median']:7.3f} {c['max']:7.3f}  {m['max']:12.1f}")
    if tool is None:
        print("go tool pprof: not found (install Go to compare)")
    for count in (60, 1440):
        go = merges.get(f"go_tool_pprof_{count}")
        for way in ("bytes", "parsed") if go else ():
            ours = merges[f"ours_{way}_{count}"]
            gw = go["wall_seconds"]["median"]
            print(f"ours ({way}) / go, {count} profiles, medians: process wall "
                  f"{ours['wall_seconds']['median'] / gw:.2f}x, in-process wall "
                  f"{ours['in_process_seconds']['median'] / gw:.2f}x, "
                  f"cpu {ours['cpu_seconds']['median'] / go['cpu_seconds']['median']:.2f}x")
    print(f"load average before {results['machine_before']['loadavg_1m_5m_15m']}, "
          f"after {results['machine_after']['loadavg_1m_5m_15m']}")
    print(f"saved {write_result('pprof', results)}")


if __name__ == "__main__":
    main()
