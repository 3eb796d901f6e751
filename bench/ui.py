"""What the web UI costs: flame graph JSON over 1 h, 24 h and 7 d of one-per-minute CPU profiles
(windows on), the time from navigation to a drawn flame graph of a 10,000-node merge in headless
chromium and where it goes (the server's phases in-process; the page's from its performance marks
and the request's resource timing), and the bytes of the UI's assets gzipped.

    .venv/bin/python bench/ui.py [--repeat 3]

Builds an embedded store in a temporary folder: a real Go CPU profile from tests/testdata, its
time rewritten per minute over 7 days, indexed in-process, then compacted into hourly and daily
windows. The flame graph requests go through the embedded app's test client (no network), the
browser measurement through `profefe serve`. Prints a table; writes JSON under bench/results/.
"""
from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import load_embedded, machine, write_result  # noqa: E402

from services import wiring  # noqa: E402
from services.query_api.ui import STATIC  # noqa: E402
from services.roles import ServeRole  # noqa: E402
from shared import pprof  # noqa: E402

MINUTE = 60
DAYS = 7


def load(cfg: ServeRole, fixture: Path, end: int) -> None:
    """One profile per minute for DAYS days before `end`, indexed in batches, then compacted."""
    load_embedded(cfg, fixture, [end - (i + 1) * MINUTE for i in range(DAYS * 24 * 60)], {"service": "bench", "type": "cpu"})


def time_flame(cfg: ServeRole, end: int, repeat: int) -> dict:
    ports = wiring.open_embedded(cfg)
    client = wiring.embedded_app(ports, cfg).test_client()
    out = {}
    for name, span in (("1h", 3600), ("24h", 86400), ("7d", DAYS * 86400)):
        q = {"service": "bench", "type": "cpu", "from": fmt(end - span), "to": fmt(end - 1)}
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            r = client.get("/api/0/flamegraph?" + urlencode(q), headers={"Accept-Encoding": "gzip"})
            times.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.get_data(as_text=True)
        sent = r.data
        body = gzip.decompress(sent) if r.headers.get("Content-Encoding") == "gzip" else sent
        out[name] = {"seconds_min": min(times), "seconds_max": max(times), "bytes": len(body),
                     "bytes_sent": len(sent), "profiles": json.loads(body)["body"]["profiles"]}
    ports.close()
    return out


def fmt(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def wide_profile(nodes: int) -> bytes:
    """A CPU profile whose merge is a tree of about `nodes` nodes: 100 callers x callees."""
    p = pprof.Profile(string_table=["", "samples", "count"])
    p.sample_type.add(type=1, unit=2)
    per = max(1, nodes // 100 - 1)
    fid = 0

    def func(name: str) -> int:
        nonlocal fid
        fid += 1
        p.string_table.append(name)
        p.function.add(id=fid, name=len(p.string_table) - 1)
        p.location.add(id=fid).line.add(function_id=fid)
        return fid

    root = func("main")
    for i in range(100):
        mid = func(f"pkg{i}.caller")
        for j in range(per):
            leaf = func(f"pkg{i}.callee{j}")
            p.sample.add(location_id=[leaf, mid, root], value=[1 + (i * 7 + j) % 13])
    return pprof.write(p)


def time_server(repeat: int) -> dict:
    """The server's share of a 10,000-node flame graph, in-process: the merge (one profile read
    into the native merger and encoded), the tree (built, cut and shaped as JSON-ready lists),
    the JSON encoding of the envelope, and its gzip."""
    from services.query_api.flame import flame_json
    from services.web import compression
    from services.web.envelope import envelope

    data = wide_profile(10_000)
    phases: dict[str, list[float]] = {"merge": [], "tree": [], "json": [], "gzip": []}
    for _ in range(repeat):
        t0 = time.perf_counter()
        merger = pprof.Merger()
        merger.add(data)
        raw = merger.encode()
        t1 = time.perf_counter()
        out = flame_json(raw, sample_type=None, budget=10_000)
        t2 = time.perf_counter()
        body = envelope(200, out)
        t3 = time.perf_counter()
        sent = gzip.compress(body, compresslevel=compression.LEVEL, mtime=0)
        t4 = time.perf_counter()
        for k, dt in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            phases[k].append(dt)
    return {"seconds_min": {k: min(v) for k, v in phases.items()}, "nodes": len(out["nodes"]["name"]),
            "bytes": len(body), "bytes_gzip": len(sent)}


# Where the page's time goes, from its marks (app.js) and the flame graph request's resource timing.
PAGE_TIMES = """() => {
  const m = Object.fromEntries(performance.getEntriesByType("mark").map((e) => [e.name, e.startTime]));
  const r = performance.getEntriesByType("resource").find((e) => e.name.includes("/api/0/flamegraph?"));
  return { request: m["flame:request"], response_start: r.responseStart, response_end: r.responseEnd,
           parsed: m["flame:parsed"], laid_out: m["flame:laid-out"], drawn: m["flame:drawn"], table: m["flame:table"],
           painted: m["flame:painted"],
           transfer_bytes: r.transferSize, body_bytes: r.decodedBodySize };
}"""

PHASES = (("page", None, "request"), ("server", "request", "response_start"),
          ("transfer", "response_start", "response_end"), ("parse", "response_end", "parsed"),
          ("layout", "parsed", "laid_out"), ("draw", "laid_out", "drawn"), ("table", "drawn", "table"),
          ("painted", "table", "painted"))


def time_browser(tmp: Path, repeat: int) -> dict:
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM_ARGS, chromium_path
    from tests.e2e.embedded import running_serve

    with running_serve(tmp / "serve-data", tmp / "serve.log") as url:
        q = urlencode({"service": "wide", "type": "cpu", "created_at": "2026-01-01T00:00:00"})
        req = urllib.request.Request(f"{url}/api/0/profiles?{q}", data=wide_profile(10_000), method="POST")
        urllib.request.urlopen(req, timeout=30).read()
        view = f"{url}/ui/?" + urlencode({"service": "wide", "type": "cpu", "from": "2025-12-31T23:00:00",
                                          "to": "2026-01-01T01:00:00"})
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(str(tmp / "chromium"), executable_path=chromium_path(),
                                                        args=CHROMIUM_ARGS, headless=True, bypass_csp=True,
                                                        viewport={"width": 1400, "height": 900})
            page = ctx.new_page()
            runs, nodes = [], 0
            for _ in range(repeat + 1):  # the first load warms the collector's and chromium's caches
                page.goto(view)
                page.wait_for_function("document.body.dataset.ready === 'flame'", timeout=60_000)
                page.wait_for_function("performance.getEntriesByName('flame:painted').length > 0", timeout=60_000)
                runs.append(page.evaluate(PAGE_TIMES))
                nodes = page.evaluate("document.getElementById('flame').dataset.drawn")
            ctx.close()
    runs = runs[1:]
    best = min(runs, key=lambda r: r["drawn"])
    phases = {name: ((best[b] - (best[a] if a else 0)) / 1000) for name, a, b in PHASES}
    return {"seconds_min": best["drawn"] / 1000, "seconds_median": statistics.median(r["drawn"] for r in runs) / 1000,
            "seconds_max": max(r["drawn"] for r in runs) / 1000,
            "painted_seconds_min": min(r["painted"] for r in runs) / 1000,
            "phases_of_fastest": phases, "frames_drawn": int(nodes), "transfer_bytes": best["transfer_bytes"],
            "body_bytes": best["body_bytes"]}


def assets() -> dict:
    files = {f.name: len(gzip.compress(f.read_bytes(), 9)) for f in sorted(STATIC.iterdir())}
    return {"files": files, "bytes_gzip_total": sum(files.values())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cfg = replace(ServeRole(data_dir=tmp / "data"))
        end = int(time.time()) // 86400 * 86400  # a day boundary, so 7 d is seven whole daily windows
        t0 = time.perf_counter()
        load(cfg, ROOT / "tests" / "testdata" / "cpu-1.pb.gz", end)
        loaded = time.perf_counter() - t0
        result = {"machine": machine(), "load_seconds": loaded, "flamegraph": time_flame(cfg, end, args.repeat),
                  "server_10k_nodes": time_server(args.repeat), "browser_10k_nodes": time_browser(tmp, args.repeat),
                  "assets": assets()}
    for name, r in result["flamegraph"].items():
        print(f"flamegraph {name:>3}: {r['profiles']:>6} profiles  {r['seconds_min']*1000:8.1f} ms  "
              f"{r['bytes']:>8} bytes, {r['bytes_sent']} sent")
    s = result["server_10k_nodes"]
    print("server, 10k-node flame graph in-process: " + ", ".join(
        f"{k} {v*1000:.1f} ms" for k, v in s["seconds_min"].items()) + f"; {s['bytes']} bytes, {s['bytes_gzip']} gzipped")
    b = result["browser_10k_nodes"]
    print(f"browser: navigation to drawn flame graph of 10k nodes: {b['seconds_min']*1000:.0f} ms "
          f"(median {b['seconds_median']*1000:.0f}, max {b['seconds_max']*1000:.0f} ms; with the table, painted: "
          f"{b['painted_seconds_min']*1000:.0f} ms; "
          f"{b['frames_drawn']} frames drawn, {b['transfer_bytes']} bytes transferred for {b['body_bytes']})")
    print("  fastest run: " + ", ".join(f"{k} {v*1000:.0f} ms" for k, v in b["phases_of_fastest"].items()))
    print(f"UI assets gzipped: {result['assets']['bytes_gzip_total']} bytes {result['assets']['files']}")
    path = write_result("ui", result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
