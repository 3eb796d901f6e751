"""Rows to `ProfileMeta`: the Python cost per profile of `SqlMetaStore.find`, apart from the SQL.

Puts `--rows` profiles of one service and type (labels region, zone, instance, pod, version,
spread over `--series` series, as a region's week is) into a fresh database, then measures in
this process's CPU seconds, so a busy machine's other work stays out:
- `_with_labels` over the rows already fetched (what builds the `ProfileMeta`s), µs per row;
- the whole `find` answering all of them (fetch and build, without PostgreSQL's own CPU), µs per
  row, and its wall time.

    .venv/bin/python bench/meta_rows.py                       # SQLite in a temporary folder
    .venv/bin/python bench/meta_rows.py --database-url postgresql+psycopg://postgres@127.0.0.1:15432/profefe_rows

A PostgreSQL database must exist; its profefe tables are dropped and made again.
"""
from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BenchError, machine, write_result  # noqa: E402

SIGNATURE = "cpu/nanoseconds:samples/count,cpu/nanoseconds"


def fill(url: str, rows: int, n_series: int, seed: int) -> tuple[object, object]:
    from shared.adapters.meta_sql import SqlMetaStore
    from shared.adapters.sql import metadata, migrate
    from shared.model import Labels, ProfileMeta, ProfileType, Query

    if url.startswith("postgresql"):
        import sqlalchemy as sa

        engine = sa.create_engine(url)
        metadata.drop_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        engine.dispose()
    migrate(url)
    rng = random.Random(seed)
    shapes = [Labels.of([("region", "us-east-1"), ("zone", f"us-east-1{'abcd'[i % 4]}"),
                         ("instance", f"ip-10-0-{i // 250}-{i % 250}"), ("pod", f"checkout-{rng.getrandbits(40):010x}"),
                         ("version", f"v{rng.randrange(1, 400)}")]) for i in range(n_series)]
    start = 1_780_000_000
    metas = [ProfileMeta(id=f"{start + i:020x}",
                         service="checkout", type=ProfileType.CPU, labels=shapes[i % n_series],
                         created_at=datetime.fromtimestamp(start + i * 600, timezone.utc),
                         received_at=datetime.fromtimestamp(start + i * 600 + 3, timezone.utc),
                         size=rng.randrange(5_000, 80_000), signature=SIGNATURE,
                         totals=(rng.randrange(1, 3000), rng.randrange(10**7, 10**11)))
             for i in range(rows)]
    store = SqlMetaStore(url)
    store.put(metas)
    query = Query("checkout", ProfileType.CPU, Labels.of([("region", "us-east-1")]),
                  metas[0].created_at, metas[-1].created_at)
    got = store.find(query)
    if got != metas:
        raise BenchError(f"find answered {len(got)} profiles, not the {len(metas)} put, or not the same")
    return store, query


def per_row(fn, rows: int, rounds: int) -> dict[str, float]:
    """CPU µs per row of `fn` (one call covers `rows`), each of `rounds` rounds; and wall ms per call."""
    fn()
    cpu, wall = [], []
    for _ in range(rounds):
        c, t = time.process_time(), time.perf_counter()
        fn()
        cpu.append((time.process_time() - c) * 1e6 / rows)
        wall.append((time.perf_counter() - t) * 1000)
    return {"cpu_us_per_row_median": round(statistics.median(cpu), 2), "cpu_us_per_row_min": round(min(cpu), 2),
            "wall_ms_median": round(statistics.median(wall), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", default=None, help="SQLite in a temporary folder unless given")
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--series", type=int, default=80)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/meta.db"
        result: dict[str, object] = {"machine_before": machine(), "args": vars(args), "url_kind": url.split(":")[0]}
        store, query = fill(url, args.rows, args.series, args.seed)
        from shared.adapters.meta_sql import _WITH_SERIES_LABELS, _where

        stmt = _WITH_SERIES_LABELS.where(_where(query))
        with store.engine.connect() as conn:
            fetched = conn.execute(stmt).all()
            gc.collect()
            result["with_labels"] = per_row(lambda: store._with_labels(conn, fetched), len(fetched), args.rounds)
        result["find"] = per_row(lambda: store.find(query), len(fetched), args.rounds)
        store.close()
        result["machine_after"] = machine()
    print(json.dumps({k: result[k] for k in ("with_labels", "find")}))
    print(f"results: {write_result('meta_rows', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
