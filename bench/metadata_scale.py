"""Metadata at a fleet's size: PostgreSQL holding a year of profiles of many instances.

Generation goes straight into the database with COPY (psycopg), writing exactly the rows
`SqlMetaStore.put` writes for each profile (profiles, profile_labels, series, series_labels,
series_hours) plus
the windows a compactor that kept up would have left (hourly and daily, for the last
`--window-days`). The fleet: `--services` services, `--instances` instances spread over them,
each sending a CPU and a heap profile at a steady period chosen so the year holds `--rows`
profiles. Labels, in the order an agent sends them: region, zone, instance (host name), pod,
version; every service deploys every 2-12 days, which gives every instance a new pod name and
version, hence new series. Secondary indexes and constraints are dropped for the load and built
again afterwards, then VACUUM ANALYZE (what autovacuum would have done over the year).

Measured with the project's own code against that database:
- `SqlMetaStore.find` for service + type + one label over 1 h and over 7 d, the label either
  narrow (`instance=<host>`) or broad (`region=<region>`), ranges ending at random moments of the
  last 30 days: p50 / p99 / max;
- `merge_plan.plan_merge` over 7 d, the same queries;
- the raw-retention pass (`SqlWindowStore.prune_raw` called as the compactor calls it until it
  returns nothing) deleting the oldest day (older than the window horizon, so clean), while a
  reader (find, 1 h, narrow) and a writer (`SqlMetaStore.put` of 50 new profiles per call, as
  an indexer batch) loop and record their worst latency;
- then the rest of the pass, `drop_windows` at a 90-day window horizon (its counters of emptied
  hours), under the same reader and writer;
- table and index sizes.

    .venv/bin/python bench/metadata_scale.py --rows 200000          # about a minute
    nice -n 10 .venv/bin/python bench/metadata_scale.py --rows 20000000
    .venv/bin/python bench/metadata_scale.py --reuse                # measure again (after a migration)

The database (default `profefe_scale` on 127.0.0.1:15432) must be empty unless `--reuse`;
`--reset` drops its profefe tables first. Only blobs are left out: retention's blob deletes are
not timed.
"""
from __future__ import annotations

import argparse
import base64
import gc
import json
import random
import statistics
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BenchError, machine, percentile, write_result  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:15432/profefe_scale"
HOUR, DAY = 3600, 86400
TABLES = ("profiles", "profile_labels", "series", "series_labels", "series_hours", "windows")
TYPES = (
    ("cpu", "cpu/nanoseconds:samples/count,cpu/nanoseconds"),
    ("heap", "space/bytes:alloc_objects/count,alloc_space/bytes,inuse_objects/count,inuse_space/bytes"),
)
REGIONS = {"us-east-1": "abcd", "us-west-2": "abc", "eu-west-1": "abc", "eu-central-1": "ab", "ap-southeast-1": "abc"}
WORDS = ("checkout billing cart search catalog payments ledger auth session profile inventory shipping "
         "pricing reviews recommend notify email ads images gateway router quotes orders tax fraud").split()
FLUSH = 1 << 20


# The fleet ------------------------------------------------------------------------------------


@dataclass
class Instance:
    index: int
    service: str
    region: str
    zone: str
    host: str


@dataclass
class Stream:
    """One instance's profiles of one type; `series` is cached per deploy."""

    instance: Instance
    ptype: str
    signature: str
    interval: float
    next_at: float
    deploy: int = -1
    series_id: str = ""
    label_parts: list[str] = field(default_factory=list)


def fleet(n_services: int, n_instances: int, rng: random.Random) -> tuple[list[str], list[Instance]]:
    names = [f"{w}-{kind}" for kind in ("api", "worker", "cron", "stream") for w in WORDS][:n_services]
    if len(names) < n_services:
        raise BenchError(f"at most {len(WORDS) * 4} services")
    regions = list(REGIONS)
    instances = []
    for i in range(n_instances):
        service = names[i % n_services]
        region = regions[(i // n_services + names.index(service)) % len(regions)]
        zone = region + rng.choice(REGIONS[region])
        host = f"ip-10-{rng.randrange(256)}-{rng.randrange(256)}-{rng.randrange(1, 255)}.{region}.compute.internal"
        instances.append(Instance(i, service, region, zone, host))
    return names, instances


def deploys(services: list[str], start: int, end: int, rng: random.Random) -> dict[str, list[int]]:
    """Per service, when each version went out (the first one before the year began)."""
    out = {}
    for s in services:
        at, times = start - rng.randrange(DAY, 12 * DAY), []
        while at < end:
            times.append(at)
            at += rng.randrange(2 * DAY, 12 * DAY)
        out[s] = times
    return out


def xid(seconds: int, machine_id: int, pid: int, counter: int) -> str:
    """The id `shared.model.new_id` makes at `seconds`, with the given machine, pid and counter."""
    raw = ((seconds << 64) | (machine_id << 40) | (pid << 24) | (counter & 0xFFFFFF)).to_bytes(12, "big")
    return base64.b32hexencode(raw).decode("ascii").rstrip("=").lower()


# Loading --------------------------------------------------------------------------------------


class Copier:
    """One COPY ... FROM STDIN per table, each on its own connection, fed text in large writes."""

    def __init__(self, dsn: str, columns: dict[str, str]) -> None:
        import psycopg

        self.conns, self.copies, self.bufs, self.sizes = {}, {}, {}, {}
        self.rows = dict.fromkeys(columns, 0)
        self._ctx = {}
        for table, cols in columns.items():
            conn = psycopg.connect(dsn, autocommit=False)
            conn.execute("SET synchronous_commit = off")
            cur = conn.cursor()
            ctx = cur.copy(f"COPY {table} ({cols}) FROM STDIN")
            self.conns[table], self._ctx[table] = conn, ctx
            self.copies[table] = ctx.__enter__()
            self.bufs[table], self.sizes[table] = [], 0

    def add(self, table: str, text: str, rows: int = 1) -> None:
        self.bufs[table].append(text)
        self.sizes[table] += len(text)
        self.rows[table] += rows
        if self.sizes[table] >= FLUSH:
            self.flush(table)

    def flush(self, table: str) -> None:
        if self.bufs[table]:
            self.copies[table].write("".join(self.bufs[table]))
            self.bufs[table], self.sizes[table] = [], 0

    def close(self) -> None:
        for table, ctx in self._ctx.items():
            self.flush(table)
            ctx.__exit__(None, None, None)
            self.conns[table].commit()
            self.conns[table].close()


def generate(dsn: str, args: argparse.Namespace, end: int) -> dict[str, Any]:
    """Write the year into the (empty, index-less) tables; returns what was written and the fleet."""
    from shared.model import Labels, ProfileType
    from shared.windows import Series

    rng = random.Random(args.seed)
    start = end - args.days * DAY
    services, instances = fleet(args.services, args.instances, rng)
    released = deploys(services, start, end, rng)
    per_stream = args.rows / (len(instances) * len(TYPES))
    interval = (end - start) / per_stream
    streams = [Stream(inst, t, sig, interval, start + rng.random() * interval)
               for inst in instances for t, sig in TYPES]
    window_from = end - args.window_days * DAY
    machine_id = 0x5CA1E0
    counters = [0] * len(instances)
    series_rows: dict[str, tuple[str, str]] = {}  # id -> its series row, its label rows
    copier = Copier(dsn, {
        "profiles": "id, service, type, created_at, received_at, size, signature, series_id",
        "profile_labels": "profile_id, position, key, value",
        "series": "id, service, type, signature, labels",
        "series_labels": "series_id, position, service, type, key, value",
        "series_hours": "series_id, hour, version, pruned",
        "windows": "series_id, span, start, blob_key, built_from, profiles, size, built_at",
    })
    day_totals: dict[str, list[int]] = {}  # series -> [sum of versions, profiles, size] of the day
    t0 = time.monotonic()
    for hour in range(start, end, HOUR):
        counts: dict[str, list[int]] = {}
        limit = hour + HOUR
        for st in streams:
            while st.next_at < limit:
                at = int(st.next_at)
                st.next_at += st.interval * (0.9 + 0.2 * rng.random())
                inst = st.instance
                times = released[inst.service]
                while st.deploy + 1 < len(times) and times[st.deploy + 1] <= at:
                    st.deploy += 1
                    _new_series(st, times[st.deploy], series_rows, Labels, ProfileType, Series)
                received = at + rng.randrange(1, 6)
                counters[inst.index] += 1
                pid = xid(received, machine_id, inst.index, counters[inst.index])
                size = rng.randrange(4_000, 60_000) if st.ptype == "cpu" else rng.randrange(20_000, 200_000)
                copier.add("profiles", f"{pid}\t{inst.service}\t{st.ptype}\t{at}\t{received}\t{size}\t"
                                       f"{st.signature}\t{st.series_id}\n")
                copier.add("profile_labels", "".join([pid + part for part in st.label_parts]), len(st.label_parts))
                c = counts.get(st.series_id)
                if c is None:
                    counts[st.series_id] = [1, size]
                else:
                    c[0] += 1
                    c[1] += size
        for sid, (n, size) in counts.items():
            copier.add("series_hours", f"{sid}\t{hour}\t{n}\tf\n")
            if window_from <= hour and hour + HOUR <= end - HOUR:  # the last hour is not compacted yet
                built = hour + HOUR + 300
                copier.add("windows", f"{sid}\t{HOUR}\t{hour}\twindows/{sid}/hour-{hour}-0\t{n}\t{n}\t{size // 3}\t{built}\n")
                d = day_totals.setdefault(sid, [0, 0, 0])
                d[0] += n
                d[1] += n
                d[2] += size // 3
        if (hour + HOUR) % DAY == 0:
            day = hour + HOUR - DAY
            if day >= window_from:
                for sid, (total, n, size) in day_totals.items():
                    copier.add("windows", f"{sid}\t{DAY}\t{day}\twindows/{sid}/day-{day}-0\t{total}\t{n}\t{size // 2}\t"
                                          f"{day + DAY + 900}\n")
            day_totals = {}
        if (hour - start) % (30 * DAY) == 0 and hour > start:
            done = (hour - start) / (end - start)
            print(f"  generated {copier.rows['profiles']:,} profiles ({done:.0%}) in {time.monotonic() - t0:.0f}s",
                  flush=True)
    for text, pairs in series_rows.values():
        copier.add("series", text)
        copier.add("series_labels", pairs, pairs.count("\n"))
    copier.close()
    return {"rows": copier.rows, "start": start, "end": end, "services": services,
            "instances": [inst.__dict__ for inst in instances]}


def _new_series(st: Stream, released: int, series_rows: dict[str, tuple[str, str]], Labels, ProfileType,
                Series) -> None:
    from shared.adapters.sql import series_labels_json

    inst = st.instance
    r = random.Random(f"{inst.service}-{released}")
    version = f"1.{(released // DAY) % 97}.{r.randrange(20)}"
    replicaset = "".join(r.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(10))
    pod = f"{inst.service}-{replicaset}-" + "".join(random.Random(f"{inst.host}-{released}").choice(
        "bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
    pairs = [("region", inst.region), ("zone", inst.zone), ("instance", inst.host), ("pod", pod), ("version", version)]
    labels = Labels.of(pairs)
    s = Series.of(inst.service, ProfileType(st.ptype), labels, st.signature)
    st.series_id = s.id
    st.label_parts = [f"\t{i}\t{k}\t{v}\n" for i, (k, v) in enumerate(pairs)]
    if s.id not in series_rows:
        text = series_labels_json(s.labels)
        pairs = "".join(f"{s.id}\t{i}\t{s.service}\t{st.ptype}\t{_copy_escape(lb.key)}\t{_copy_escape(lb.value)}\n"
                        for i, lb in enumerate(s.labels))
        series_rows[s.id] = (f"{s.id}\t{s.service}\t{st.ptype}\t{st.signature}\t{_copy_escape(text)}\n", pairs)


def _copy_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def drop_indexes(conn) -> list[str]:
    """Drop every secondary index and constraint of the tables; the statements that make them again."""
    fks, keys, indexes, drops = [], [], [], []
    for table in TABLES:
        for name, kind, definition in conn.execute(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'f')", (table,)):
            (fks if kind == "f" else keys).append(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
            drops.append((0 if kind == "f" else 1, f"ALTER TABLE {table} DROP CONSTRAINT {name}"))
        for name, definition in conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)", (table, table)):
            indexes.append(definition)
            drops.append((2, f"DROP INDEX {name}"))
    for _, stmt in sorted(drops):
        conn.execute(stmt)
    return keys + indexes + fks


def load(url: str, args: argparse.Namespace) -> dict[str, Any]:
    import psycopg

    from shared.adapters.sql import migrate

    dsn = _dsn(url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        if args.reset:
            conn.execute("DROP TABLE IF EXISTS profile_labels, profiles, series_labels, series, series_hours, windows, "
                         "alembic_version")
        migrate(url)
        if conn.execute("SELECT count(*) FROM (SELECT 1 FROM profiles LIMIT 1) x").fetchone()[0]:
            raise BenchError("the database holds profiles already: give --reuse to measure them, or --reset")
        rebuild = drop_indexes(conn)
    end = int(time.time()) // HOUR * HOUR
    t0 = time.monotonic()
    written = generate(dsn, args, end)
    copied = time.monotonic() - t0
    print(f"copied {written['rows']} in {copied:.0f}s; building {len(rebuild)} indexes and constraints", flush=True)
    t1 = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        for stmt in rebuild:
            t = time.monotonic()
            conn.execute(stmt)
            print(f"  {time.monotonic() - t:6.1f}s  {stmt}", flush=True)
        indexed = time.monotonic() - t1
        t2 = time.monotonic()
        for table in TABLES:
            conn.execute(f"VACUUM ANALYZE {table}")
    written.update(copy_s=round(copied, 1), index_s=round(indexed, 1), vacuum_s=round(time.monotonic() - t2, 1))
    return written


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


# Measuring ------------------------------------------------------------------------------------


def fleet_from_db(url: str) -> dict[str, Any]:
    """The fleet as the database holds it: each series' service, type and labels, and the time span."""
    import psycopg

    with psycopg.connect(_dsn(url)) as conn:
        lo = conn.execute("SELECT min(hour) FROM series_hours WHERE NOT pruned").fetchone()[0]
        hi = conn.execute("SELECT max(hour) FROM series_hours").fetchone()[0]
        rows = conn.execute("SELECT service, type, labels FROM series").fetchall()
    hosts: dict[tuple[str, str], set[str]] = {}
    label_sets: dict[tuple[str, str], list[list[list[str]]]] = {}
    regions: dict[tuple[str, str], set[str]] = {}
    for service, ptype, labels in rows:
        label_sets.setdefault((service, ptype), []).append(json.loads(labels))
        pairs = dict(json.loads(labels))
        hosts.setdefault((service, ptype), set()).add(pairs["instance"])
        regions.setdefault((service, ptype), set()).add(pairs["region"])
    return {"start": int(lo), "end": int(hi) + HOUR, "hosts": {k: sorted(v) for k, v in hosts.items()},
            "regions": {k: sorted(v) for k, v in regions.items()}, "label_sets": label_sets}


def queries(f: dict[str, Any], span: int, label: str, n: int, rng: random.Random) -> list:
    from shared.model import Labels, ProfileType, Query

    out = []
    keys = sorted(f["hosts"])
    recent = max(f["start"] + span, f["end"] - 30 * DAY)
    for _ in range(n):
        service, ptype = rng.choice(keys)
        value = rng.choice(f["hosts" if label == "instance" else "regions"][(service, ptype)])
        end = rng.randrange(recent, f["end"])
        out.append(Query(service, ProfileType(ptype), Labels.of([(label, value)]),
                         datetime.fromtimestamp(end - span, timezone.utc), datetime.fromtimestamp(end, timezone.utc)))
    return out


def timed(fn: Callable[[Any], Any], items: list, warmup: int = 5) -> dict[str, Any]:
    for q in items[:warmup]:
        fn(q)
    ms, sizes = [], []
    for q in items:
        t = time.perf_counter()
        got = fn(q)
        ms.append((time.perf_counter() - t) * 1000)
        sizes.append(got)
    ms.sort()
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 2), "p99_ms": round(percentile(ms, 99), 2),
            "max_ms": round(ms[-1], 2), "mean_results": round(statistics.mean(sizes), 1)}


class Loop(threading.Thread):
    """Calls `fn` until stopped, recording (start, latency) of each call."""

    def __init__(self, fn: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self.fn, self.stop, self.calls = fn, threading.Event(), []
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            t = time.perf_counter()
            try:
                self.fn()
            except Exception as exc:  # counted, not fatal: the point is to see it
                self.errors.append("".join(traceback.format_exception(exc)[-3:]))
            self.calls.append((t, time.perf_counter() - t))
            time.sleep(0.01)

    def during(self, lo: float, hi: float) -> dict[str, Any]:
        inside = sorted(d * 1000 for t, d in self.calls if lo <= t + d and t <= hi)
        return {"calls": len(inside), "p50_ms": round(percentile(inside, 50), 1),
                "p99_ms": round(percentile(inside, 99), 1), "max_ms": round(inside[-1], 1) if inside else None,
                "over_1s": sum(1 for x in inside if x > 1000), "errors": len(self.errors)}


def retention(url: str, meta, f: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    from shared.adapters.windows_sql import SqlWindowStore
    from shared.model import Labels, ProfileMeta, ProfileType, new_id

    store = SqlWindowStore(url)
    reads = queries(f, HOUR, "instance", 1000, rng)
    signatures = dict(TYPES)
    # Drawn up front: the two threads share no random state.
    shapes = [(service, ptype, Labels.of((k, v) for k, v in rng.choice(f["label_sets"][(service, ptype)])))
              for service, ptype in (rng.choice(sorted(f["label_sets"])) for _ in range(5000))]
    now = int(time.time())
    drawn = iter(range(10**9))

    def write() -> None:
        at = datetime.fromtimestamp(now, timezone.utc)
        batch = [ProfileMeta(new_id(), service, ProfileType(ptype), labels, at, at, 20_000, signatures[ptype])
                 for service, ptype, labels in (shapes[next(drawn) % len(shapes)] for _ in range(50))]
        meta.put(batch)

    read_at = iter(range(10**9))
    reader = Loop(lambda: meta.find(reads[next(read_at) % len(reads)]))
    writer = Loop(write)
    before = f["start"] + DAY  # the oldest day still held
    windows_before = f["end"] - 90 * DAY
    reader.start()
    writer.start()
    time.sleep(3)
    t0 = time.perf_counter()
    deleted, calls = 0, []
    while True:
        c = time.perf_counter()
        ids = store.prune_raw(before, windows_before, limit=1000)
        calls.append(round(time.perf_counter() - c, 2))
        deleted += len(ids)
        if not ids:
            break
    t1 = time.perf_counter()
    dropped, drop_calls = 0, []
    while True:  # the rest of the compactor's retention pass: windows, and counters left empty
        c = time.perf_counter()
        keys = store.drop_windows(windows_before, limit=1000)
        drop_calls.append(round(time.perf_counter() - c, 2))
        dropped += len(keys)
        if len(keys) < 1000:
            break
    t2 = time.perf_counter()
    time.sleep(3)
    reader.stop.set()
    writer.stop.set()
    reader.join()
    writer.join()
    store.close()
    return {"deleted": deleted, "seconds": round(t1 - t0, 2), "calls_s": calls,
            "drop_windows_s": round(t2 - t1, 2), "drop_windows_calls_s": drop_calls, "windows_dropped": dropped,
            "before": before, "reader": reader.during(t0, t2), "writer": writer.during(t0, t2),
            "reader_before_pass": reader.during(t0 - 3, t0), "writer_before_pass": writer.during(t0 - 3, t0),
            "reader_errors": reader.errors[:3], "writer_errors": writer.errors[:3]}


def sizes(url: str) -> dict[str, Any]:
    import psycopg

    out: dict[str, Any] = {}
    with psycopg.connect(_dsn(url)) as conn:
        for table in TABLES:
            rows, heap, idx = conn.execute(
                "SELECT reltuples::bigint, pg_table_size(oid), pg_indexes_size(oid) FROM pg_class WHERE relname = %s",
                (table,)).fetchone()
            out[table] = {"rows": int(rows), "table_mb": round(heap / 2**20), "indexes_mb": round(idx / 2**20),
                          "indexes": {n: round(s / 2**20) for n, s in conn.execute(
                              "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes "
                              "WHERE relname = %s ORDER BY indexrelname", (table,))}}
        out["database_mb"] = round(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2**20)
        out["revision"] = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    return out


def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    from services.query_api.merge_plan import plan_merge
    from shared.adapters.meta_sql import SqlMetaStore
    from shared.adapters.sql import migrate
    from shared.adapters.windows_sql import SqlWindowStore

    migrate(url)
    f = fleet_from_db(url)
    # The fleet is a hundred thousand series of Python objects: kept out of the collector, or a
    # full collection of them (a second on a busy machine) lands in the timed calls.
    gc.freeze()
    rng = random.Random(args.seed + 1)
    meta, store = SqlMetaStore(url), SqlWindowStore(url)
    out: dict[str, Any] = {"sizes_before_pass": sizes(url)}
    try:
        for label in ("instance", "region") if "queries" in args.parts else ():
            for name, span in (("1h", HOUR), ("7d", 7 * DAY)):
                qs = queries(f, span, label, args.queries, rng)
                out[f"find_{name}_{label}"] = r = timed(lambda q: len(meta.find(q)), qs)
                print(f"  find {name:>2} {label:<8}: {r}", flush=True)
            qs = queries(f, 7 * DAY, label, args.queries, rng)
            out[f"plan_7d_{label}"] = r = timed(lambda q: plan_merge(meta, store, q).inputs, qs)
            print(f"  plan 7d {label:<8}: {r}", flush=True)
        if "retention" in args.parts:
            out["retention"] = r = retention(url, meta, f, rng)
            print(f"  retention: {r}", flush=True)
    finally:
        meta.close()
        store.close()
    out["sizes"] = sizes(url)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", default=DEFAULT_URL)
    ap.add_argument("--rows", type=int, default=20_000_000, help="profiles over the whole span")
    ap.add_argument("--services", type=int, default=50)
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--window-days", type=int, default=90, help="how far back hourly and daily windows exist")
    ap.add_argument("--queries", type=int, default=200, help="per figure")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--reuse", action="store_true", help="measure what the database holds, loading nothing")
    ap.add_argument("--reset", action="store_true", help="drop the profefe tables first")
    ap.add_argument("--parts", default="queries,retention", help="what to measure: queries (find and plan), retention")
    args = ap.parse_args()
    if args.database_url.rsplit("/", 1)[-1].startswith("profefe_test"):
        raise BenchError("not the test database: the bench deletes a day of it")
    result: dict[str, Any] = {"machine_before": machine(), "args": vars(args)}
    if not args.reuse:
        written = load(args.database_url, args)
        result["load"] = {k: v for k, v in written.items() if k not in ("instances", "services")}
    result.update(measure(args.database_url, args))
    result["machine_after"] = machine()
    print_table(result)
    print(f"results: {write_result('metadata_scale', result)}")
    return 0


def print_table(r: dict[str, Any]) -> None:
    print()
    print(f"{'figure':<26} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'results':>9}")
    for key in ("find_1h_instance", "find_7d_instance", "plan_7d_instance", "find_1h_region", "find_7d_region",
                "plan_7d_region"):
        if key not in r:
            continue
        x = r[key]
        print(f"{key:<26} {x['p50_ms']:>9} {x['p99_ms']:>9} {x['max_ms']:>9} {x['mean_results']:>9}")
    ret = r.get("retention")
    if ret is not None:
        print_retention(ret)
    print_sizes(r["sizes"])


def print_retention(ret: dict[str, Any]) -> None:
    print(f"retention of one day: {ret['deleted']:,} rows in {ret['seconds']} s (calls {ret['calls_s']}), "
          f"then drop_windows {ret['drop_windows_s']} s")
    for who in ("reader", "writer"):
        x = ret[who]
        print(f"  {who} during it: {x['calls']} calls, p99 {x['p99_ms']} ms, max {x['max_ms']} ms, "
              f"{x['over_1s']} over 1 s, {x['errors']} errors (before it: max {ret[who + '_before_pass']['max_ms']} ms)")


def print_sizes(s: dict[str, Any]) -> None:
    for table in TABLES:
        t = s[table]
        print(f"  {table:<15} {t['rows']:>12,} rows  table {t['table_mb']:>7,} MB  indexes {t['indexes_mb']:>7,} MB  "
              f"{t['indexes']}")
    print(f"  database {s['database_mb']:,} MB at revision {s['revision']}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"metadata_scale: {exc}", file=sys.stderr)
        sys.exit(2)
