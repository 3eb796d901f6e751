"""What `reclaim` costs: sealed 64 MiB packs of ~20 KB uploads, one upload in `--keep-every` kept
(a service with a longer retention), the rest deleted one key a call as retention does; then the
packs are reclaimed while another thread appends batches of 8 uploads, as ingest does.

Prints and writes (bench/results/reclaim-*.json) the time and CPU of the deletes and of the
reclaim, the bytes copied and freed, the peak RSS, and the append latency percentiles before
and during the reclaim. Through the blob store's port, in this process: no HTTP, no rows.

    python bench/reclaim.py [--packs 4] [--keep-every 10]
"""
from __future__ import annotations

import argparse
import resource
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from contextlib import closing
from pathlib import Path

from _common import closest_fixture, machine, percentile, write_result

from shared.adapters import blob_packs
from shared.adapters.blobs_local import LocalBlobStore

BATCH = 8


def fill(store: LocalBlobStore, body: bytes, packs: int) -> list[str]:
    """Keys of enough batches to seal `packs` packs (the last one, open, excluded)."""
    per_pack = blob_packs.PACK_BYTES // (len(body) + 64)
    keys = [f"profiles/{n:08d}" for n in range(per_pack * packs + BATCH)]  # the last batch seals the last pack
    for start in range(0, len(keys), BATCH):
        store.put_many([(key, body) for key in keys[start:start + BATCH]])
        if start % (BATCH * 400) == 0:
            print(f"\r  filled {start + BATCH}/{len(keys)}", end="", file=sys.stderr, flush=True)
    print(f"\r  filled {len(keys)}/{len(keys)}", file=sys.stderr, flush=True)
    return keys


def appending(store: LocalBlobStore, body: bytes, stop: threading.Event, out: list[tuple[float, float]]) -> None:
    """Batches of BATCH new uploads, back to back: (time started, seconds) each."""
    n = 0
    while not stop.is_set():
        batch = [(f"profiles/live-{n + i:08d}", body) for i in range(BATCH)]
        n += BATCH
        started = time.perf_counter()
        store.put_many(batch)
        out.append((started, time.perf_counter() - started))
        time.sleep(0.002)  # ingest at about a third of its peak, so the reclaim competes, not starves


def latency(samples: list[tuple[float, float]], start: float, end: float) -> dict:
    ms = sorted(s * 1000 for at, s in samples if start <= at < end)
    return {"appends": len(ms), "p50_ms": round(percentile(ms, 50), 2), "p99_ms": round(percentile(ms, 99), 2),
            "max_ms": round(ms[-1], 2) if ms else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packs", type=int, default=4, help="sealed packs to fill")
    ap.add_argument("--keep-every", type=int, default=10, help="one upload in this many is kept")
    ap.add_argument("--chunk-kib", type=int, default=blob_packs.RECLAIM_CHUNK >> 10,
                    help="bytes copied per append (RECLAIM_CHUNK), in KiB")
    ap.add_argument("--data-dir", type=Path, default=None, help="default: a fresh temporary folder, removed after")
    args = ap.parse_args()
    blob_packs.RECLAIM_CHUNK = args.chunk_kib << 10
    fixture = closest_fixture("cpu-*.pb.gz", 20_000)
    body = fixture.read_bytes()
    root = args.data_dir or Path(tempfile.mkdtemp(prefix="profefe-bench-reclaim-"))
    result: dict = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": machine(),
                    "fixture": fixture.name, "fixture_bytes": len(body), "pack_bytes": blob_packs.PACK_BYTES,
                    "keep_every": args.keep_every, "chunk_bytes": blob_packs.RECLAIM_CHUNK}
    try:
        store = LocalBlobStore(root / "blobs")
        keys = fill(store, body, args.packs)
        folder = root / "blobs" / blob_packs.FOLDER
        with closing(sqlite3.connect(folder / blob_packs.INDEX)) as index:
            sealed = index.execute("SELECT COUNT(*) FROM packs WHERE sealed = 1").fetchone()[0]
        gone = [key for n, key in enumerate(keys) if n % args.keep_every]
        started, cpu = time.perf_counter(), time.process_time()
        for key in gone:
            store.delete(key)
        deletes = {"keys": len(gone), "seconds": round(time.perf_counter() - started, 2),
                   "cpu_seconds": round(time.process_time() - cpu, 2)}
        deletes["per_s"] = round(len(gone) / deletes["seconds"])
        result["deletes"] = deletes
        print(f"deleted {len(gone)} of {len(keys)} uploads one key a call: {deletes['seconds']} s "
              f"({deletes['per_s']}/s, {deletes['cpu_seconds']} s CPU)", flush=True)

        samples: list[tuple[float, float]] = []
        stop = threading.Event()
        writer = threading.Thread(target=appending, args=(store, body, stop, samples))
        writer.start()
        time.sleep(2)
        before_size = sum(p.stat().st_size for p in folder.glob(f"*{blob_packs.SUFFIX}"))
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0, cpu = time.perf_counter(), time.process_time()
        packs, freed = store.reclaim()
        t1 = time.perf_counter()
        cpu_s = time.process_time() - cpu  # the appending thread's CPU is in it too
        time.sleep(2)
        stop.set()
        writer.join()
        kept = len(keys) - len(gone)
        copied = kept * len(body)
        result["reclaim"] = {
            "packs_deleted": packs, "packs_sealed": sealed, "bytes_freed": freed, "bytes_copied": copied,
            "seconds": round(t1 - t0, 3), "process_cpu_seconds": round(cpu_s, 3),
            "copied_mb_per_s": round(copied / (1 << 20) / (t1 - t0), 1),
            "freed_mb_per_s": round(freed / (1 << 20) / (t1 - t0), 1),
            "pack_bytes_before": before_size,
            "pack_bytes_after": sum(p.stat().st_size for p in folder.glob(f"*{blob_packs.SUFFIX}")),
            "peak_rss_mb": round(max(rss_before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024, 1),
        }
        result["appends_before"] = latency(samples, t0 - 2, t0)
        result["appends_during"] = latency(samples, t0, t1)
        r = result["reclaim"]
        print(f"reclaimed {packs} of {sealed} sealed packs in {r['seconds']} s: freed "
              f"{freed / (1 << 20):.0f} MiB, copied {copied / (1 << 20):.1f} MiB ({r['copied_mb_per_s']} MiB/s "
              f"copied, {r['freed_mb_per_s']} MiB/s freed); peak RSS {r['peak_rss_mb']} MB", flush=True)
        for when in ("before", "during"):
            a = result[f"appends_{when}"]
            print(f"appends of {BATCH} x {len(body)} B {when:>6}: {a['appends']:5d}, p50 {a['p50_ms']} ms, "
                  f"p99 {a['p99_ms']} ms, max {a['max_ms']} ms", flush=True)
        store.close()
    finally:
        if args.data_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"results: {write_result('reclaim', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
