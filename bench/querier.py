"""What Grafana's reads cost: Pyroscope's querier routes over 24 hours of CPU profiles, one every
10 s as pyroscope-io sends them (8,640), with the compactor's windows and without.

    nice -n 10 .venv/bin/python bench/querier.py [--repeat 3] [--interval 10]

Builds an embedded store in a temporary folder: a real Go CPU profile from tests/testdata, its
time rewritten every `--interval` seconds over the day before a day boundary, indexed in-process,
then compacted into hourly and daily windows. Each route is called through the embedded app's
test client (no network) as Grafana's data source calls it (protobuf), once with windows and once
with `--no-merge-windows`; the first call of each is reported apart. Checks that both give the
same flame graph total. Prints a table; writes JSON under bench/results/.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import BenchError, load_embedded, machine, write_result  # noqa: E402

from services import wiring  # noqa: E402
from services.query_api import querier_pb2 as pb  # noqa: E402
from services.query_api.config import QueryConfig  # noqa: E402
from services.roles import ServeRole  # noqa: E402

DAY = 86400
CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
SELECTOR = '{service_name="bench"}'


def load(cfg: ServeRole, fixture: Path, end: int, interval: int) -> int:
    """One profile every `interval` seconds over the day before `end`, then compacted."""
    return load_embedded(cfg, fixture, list(range(end - DAY, end, interval)),
                         {"service": "bench", "type": "cpu", "labels": "region=eu"})


def calls(end: int) -> dict[str, tuple[str, object, type]]:
    span = {"start": (end - DAY) * 1000, "end": end * 1000 - 1}
    return {
        "ProfileTypes": ("ProfileTypes", pb.ProfileTypesRequest(**span), pb.ProfileTypesResponse),
        "LabelNames": ("LabelNames", pb.LabelNamesRequest(matchers=[SELECTOR], **span), pb.LabelNamesResponse),
        "Series": ("Series", pb.SeriesRequest(matchers=[SELECTOR], **span), pb.SeriesResponse),
        "SelectMergeStacktraces": ("SelectMergeStacktraces", pb.SelectMergeStacktracesRequest(
            profile_typeID=CPU, label_selector=SELECTOR, max_nodes=16384, **span), pb.SelectMergeStacktracesResponse),
        "SelectSeries (step 60 s)": ("SelectSeries", pb.SelectSeriesRequest(
            profile_typeID=CPU, label_selector=SELECTOR, step=60, **span), pb.SelectSeriesResponse),
        "SelectMergeProfile": ("SelectMergeProfile", pb.SelectMergeProfileRequest(
            profile_typeID=CPU, label_selector=SELECTOR, **span), None),
    }


def time_calls(cfg: ServeRole, end: int, repeat: int) -> tuple[dict, int]:
    ports = wiring.open_embedded(cfg)
    client = wiring.embedded_app(ports, cfg).test_client()
    out, total = {}, -1
    for name, (method, request, response) in calls(end).items():
        times, size = [], 0
        for _ in range(repeat + 1):
            t0 = time.perf_counter()
            r = client.post(f"/querier.v1.QuerierService/{method}", data=request.SerializeToString(),  # type: ignore[attr-defined]
                            headers={"Content-Type": "application/proto"})
            times.append(time.perf_counter() - t0)
            if r.status_code != 200:
                raise BenchError(f"{method}: {r.status_code} {r.get_data(as_text=True)[:300]}")
            size = len(r.data)
            if method == "SelectMergeStacktraces":
                total = response.FromString(r.data).flamegraph.total  # type: ignore[union-attr]
        out[name] = {"first_ms": times[0] * 1000, "min_ms": min(times[1:]) * 1000, "max_ms": max(times[1:]) * 1000,
                     "bytes": size}
    ports.close()
    return out, total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--interval", type=int, default=10, help="seconds between profiles (default 10)")
    args = ap.parse_args(argv)
    if not 1 <= args.repeat <= 20 or not 1 <= args.interval <= 3600:
        raise SystemExit("--repeat 1..20, --interval 1..3600")
    with tempfile.TemporaryDirectory() as d:
        cfg = ServeRole(data_dir=Path(d) / "data")
        end = int(time.time()) // DAY * DAY  # a day boundary: the day is one daily window
        t0 = time.perf_counter()
        profiles = load(cfg, ROOT / "tests" / "testdata" / "cpu-1.pb.gz", end, args.interval)
        loaded = time.perf_counter() - t0
        windows, w_total = time_calls(cfg, end, args.repeat)
        raw, r_total = time_calls(replace(cfg, query=QueryConfig(use_windows=False)), end, args.repeat)
    if w_total != r_total:
        raise BenchError(f"flame graph totals differ: windows {w_total}, raw {r_total}")
    print(f"{profiles} profiles over 24 h, loaded and compacted in {loaded:.0f} s "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"{'route (24 h)':<26} {'windows first/min ms':>21} {'raw first/min ms':>18} {'bytes':>9}")
    for name in windows:
        w, r = windows[name], raw[name]
        print(f"{name:<26} {w['first_ms']:>10.1f} /{w['min_ms']:>8.1f} {r['first_ms']:>9.1f} /{r['min_ms']:>7.1f} "
              f"{w['bytes']:>9}")
    path = write_result("querier", {"machine": machine(), "profiles": profiles, "interval_s": args.interval,
                                    "load_seconds": loaded, "windows": windows, "raw": raw})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
