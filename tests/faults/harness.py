"""The pieces of the fault suite: a paced, retrying ingest load of real profiles, control of the
real services through scripts/services.sh, and the audit that follows each fault.

The load is what an agent in an incident does: it POSTs, and on a 503 or a refused connection
it waits (the server's Retry-After, at most RETRY_CAP seconds) and sends the same bytes again.
Only a 200 counts as acknowledged; the audit then holds the system to every acknowledgement.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterable
from urllib.parse import urlencode, urlsplit

from minio import Minio
from minio.error import MinioException
from urllib3.exceptions import HTTPError

from services.importer import parse_retry_after
from shared import pprof
from shared.model import blob_key, format_time
from tests.e2e import distributed
from tests.services import read_object
from tests.toxiproxy import Toxic, Toxiproxy

if TYPE_CHECKING:
    from tests.faults.conftest import Rig

ROOT = Path(__file__).resolve().parents[2]
TESTDATA = ROOT / "tests" / "testdata"
SERVICES_SH = ROOT / "scripts" / "services.sh"

RETRY_CAP = 5.0  # seconds; the longest wait between two tries of one upload
GIVE_UP = 180.0  # seconds an upload is retried before the load calls it refused
VISIBLE_TIMEOUT = 240.0  # seconds the audit waits for the acknowledged to be listed


def closed_day(now: datetime) -> datetime:
    """Midnight starting the day before yesterday: a day the compactor has closed whatever the time.
    Yesterday is closed only `grace` (5 min) after midnight: a run in those minutes would see its
    hours compacted and, rightly, no daily window."""
    return (now - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)


# -- the profiles -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Body:
    data: bytes
    digest: str  # MD5, hex: what S3 gives as the ETag of an object written in one PUT
    fixture: int  # which tests/testdata/cpu-N profile it was made from


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def cpu_fixtures() -> list[pprof.Profile]:
    paths = sorted(TESTDATA.glob("cpu-*.pb.gz"), key=lambda p: int(p.stem.split("-")[1].split(".")[0]))
    assert paths, f"no cpu fixtures under {TESTDATA}"
    return [pprof.parse(p.read_bytes()) for p in paths]


class Bodies:
    """One distinct profile per time: the real Go CPU profiles in turn, each stamped with its own
    time_nanos, so every upload has bytes of its own and a copy can be told from the original.

    Each is made by the load's thread that sends it (a scenario's 2,000 made before the load held
    up its start by 1.2-1.4 s), from that thread's own copies of the fixtures."""

    def __init__(self, fixtures: list[pprof.Profile], times_ns: Iterable[int]) -> None:
        self._fixtures = fixtures
        self._times = list(times_ns)
        self._local = threading.local()

    def __len__(self) -> int:
        return len(self._times)

    def make(self, n: int) -> Body:
        mine: list[pprof.Profile] | None = getattr(self._local, "fixtures", None)
        if mine is None:
            mine = self._local.fixtures = [pprof.Profile.FromString(p.SerializeToString()) for p in self._fixtures]
        k = n % len(mine)
        p = mine[k]
        p.time_nanos = self._times[n]
        data = pprof.write(p)
        return Body(data, md5_hex(data), k)


Stacks = dict[tuple, tuple[int, ...]]


def stack_values(p: pprof.Profile) -> Stacks:
    """Sample values keyed by (function names, label pairs): a form that does not depend on the
    ids or the order a merge happened to give things."""
    st = p.string_table
    fn = {f.id: st[f.name] for f in p.function}
    loc = {loc.id: tuple(fn.get(line.function_id, "?") for line in loc.line) for loc in p.location}
    out: dict[tuple, list[int]] = {}
    for s in p.sample:
        key = (tuple(loc[i] for i in s.location_id),
               tuple(sorted((st[lb.key], st[lb.str], lb.num) for lb in s.label)))
        acc = out.get(key)
        if acc is None:
            out[key] = list(s.value)
        else:
            for i, v in enumerate(s.value):
                acc[i] += v
    return {k: tuple(v) for k, v in out.items()}


def sum_stacks(parts: Iterable[tuple[Stacks, int]]) -> Stacks:
    """Σ count × stacks."""
    out: dict[tuple, list[int]] = {}
    for stacks, count in parts:
        for key, values in stacks.items():
            acc = out.setdefault(key, [0] * len(values))
            for i, v in enumerate(values):
                acc[i] += v * count
    return {k: tuple(v) for k, v in out.items() if any(v)}


# -- the load -----------------------------------------------------------------------------------

@dataclass
class Upload:
    body: Body | None = None  # made when it is first sent
    id: str | None = None
    acked_at: float = 0.0  # time.monotonic() of its 200
    tries: int = 0
    refused: str | None = None  # a 4xx, or no 200 within GIVE_UP: the upload was never accepted


class Load:
    """`threads` clients POSTing `bodies` in order at about `rate` per second to one service,
    each retrying its upload until a 200 (see the module's docstring)."""

    def __init__(self, ingest_url: str, service: str, bodies: Bodies, *, rate: float, threads: int = 8,
                 labels: str = "fault=1", hold_last: int = 0) -> None:
        self.url = ingest_url
        self.target = "/api/0/profiles?" + urlencode({"service": service, "type": "cpu", "labels": labels})
        self.bodies = bodies
        self.uploads = [Upload() for _ in range(len(bodies))]
        self.rate = rate
        self.statuses: Counter[int] = Counter()  # every answer but 200, 0 = no answer
        self._next = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        self._start = 0.0
        # The last `hold_last` uploads wait for release(): a fault that must land while the load
        # is still going then does, however slow the machine is.
        self._held_from = len(self.uploads) - hold_last
        self._released = threading.Event()
        if not hold_last:
            self._released.set()

    def release(self) -> None:
        self._released.set()

    def start(self) -> "Load":
        self._start = time.monotonic()
        for t in self._threads:
            t.start()
        return self

    def acknowledged_count(self) -> int:
        with self._lock:
            return sum(1 for u in self.uploads if u.id)

    def wait_for(self, count: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while self.acknowledged_count() < count:
            assert time.monotonic() < deadline, f"the load got {self.acknowledged_count()} of {count} 200s in {timeout}s"
            time.sleep(0.05)

    def join(self, timeout: float = GIVE_UP + 120) -> None:
        for t in self._threads:
            t.join(timeout)
            assert not t.is_alive(), "the load did not finish"

    def _run(self) -> None:
        while True:
            with self._lock:
                n = self._next
                self._next += 1
            if n >= len(self.uploads):
                return
            up = self.uploads[n]
            up.body = self.bodies.make(n)
            if n >= self._held_from:
                self._released.wait()
            pause = self._start + n / self.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            self._send(up, up.body)

    def _send(self, up: Upload, body: Body) -> None:
        give_up = time.monotonic() + GIVE_UP
        while True:
            up.tries += 1
            status, headers, data = distributed.request(self.url, "POST", self.target, body.data, timeout=30)
            if status == 200:
                up.id = json.loads(data)["body"]["id"]
                up.acked_at = time.monotonic()
                return
            with self._lock:
                self.statuses[status] += 1
            if 400 <= status < 500 and status != 429:
                up.refused = f"HTTP {status}: {data[:200]!r}"
                return
            if time.monotonic() > give_up:
                up.refused = f"no 200 within {GIVE_UP:g}s (last: HTTP {status})"
                return
            wait = parse_retry_after(headers.get("Retry-After"))
            time.sleep(min(max(1.0 if wait is None else wait, 0.2), RETRY_CAP))


# -- the services -------------------------------------------------------------------------------

def services_sh(*args: str) -> str:
    done = subprocess.run(["bash", str(SERVICES_SH), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"services.sh {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def managed_by_services_sh(name: str, address: str) -> bool:
    """True when `name` is up under scripts/services.sh at `address` (what the suite may stop)."""
    try:
        status = services_sh("status", name)
    except AssertionError:
        return False
    return any(line.split()[:3] == [name, "up", address] for line in status.splitlines())


class Outage:
    """Stops a service for `seconds` and starts it again, in a thread of its own."""

    def __init__(self, name: str, seconds: float) -> None:
        self.name, self.seconds = name, seconds
        self.error: BaseException | None = None
        self.down_at = self.up_at = 0.0
        self._down = threading.Event()  # set once the service is down, or its stop failed
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Outage":
        self._thread.start()
        return self

    def wait_down(self) -> None:
        """Until the service is down (or its stop failed, which join() then raises)."""
        self._down.wait(600)

    def _run(self) -> None:
        try:
            services_sh("down", self.name)
            self.down_at = time.monotonic()
            self._down.set()
            time.sleep(self.seconds)
        except BaseException as exc:  # noqa: BLE001 - handed to the test through join()
            self.error = exc
        finally:
            self._down.set()
            try:
                services_sh("up", self.name)
                self.up_at = time.monotonic()
            except BaseException as exc:  # noqa: BLE001
                self.error = self.error or exc

    def join(self) -> None:
        self._thread.join(600)
        if self.error is not None:
            raise self.error


class NetworkFault:
    """`toxics` on every one of `links` (Toxiproxy proxies) for `seconds`, then removed, in a
    thread of its own."""

    def __init__(self, proxies: Toxiproxy, links: list[str], toxics: list[Toxic], seconds: float) -> None:
        self.proxies, self.links, self.toxics, self.seconds = proxies, links, toxics, seconds
        self.error: BaseException | None = None
        self.on_at = self.off_at = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "NetworkFault":
        self._thread.start()
        return self

    def _run(self) -> None:
        added: list[tuple[str, str]] = []
        try:
            for link in self.links:
                for toxic in self.toxics:
                    self.proxies.add(link, toxic)
                    added.append((link, toxic.name))
            self.on_at = time.monotonic()
            time.sleep(self.seconds)
        except BaseException as exc:  # noqa: BLE001 - handed to the test through join()
            self.error = exc
        finally:
            for link, name in added:
                try:
                    self.proxies.remove(link, name)
                except BaseException as exc:  # noqa: BLE001
                    self.error = self.error or exc
            self.off_at = time.monotonic()

    def join(self) -> None:
        self._thread.join(600)
        if self.error is not None:
            raise self.error


# -- the audit ----------------------------------------------------------------------------------

@dataclass
class Audit:
    scenario: str
    acknowledged: int
    found: int
    lost: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    duplicated: int = 0
    strangers: list[str] = field(default_factory=list)  # listed, but neither acknowledged nor sent
    misserved: list[str] = field(default_factory=list)  # downloaded through the API unlike as stored
    refused: list[str] = field(default_factory=list)
    retried: int = 0
    merge_equal: bool = False
    merge_note: str = ""
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds each step of the audit took

    @property
    def clean(self) -> bool:
        return (not self.lost and not self.altered and not self.duplicated and not self.strangers
                and not self.misserved and not self.refused and self.merge_equal)

    def row(self) -> dict:
        return {"scenario": self.scenario, "acknowledged": self.acknowledged, "found": self.found,
                "lost": len(self.lost) + len(self.altered), "duplicated": self.duplicated,
                "merge": "equal" if self.merge_equal else "DIFFERS", "retried": self.retried,
                "non_200": dict(sorted(self.statuses.items())), "seconds": round(self.seconds, 1),
                "phases": {k: round(v, 1) for k, v in self.phases.items()}}


def _range(window: tuple[datetime, datetime]) -> dict[str, str]:
    """`from` and `to` as the API takes them (UTC, no zone suffix)."""
    return {"from": format_time(window[0])[:-1], "to": format_time(window[1])[:-1]}


def list_ids(query_url: str, service: str, window: tuple[datetime, datetime]) -> list[str]:
    params = {"service": service, **_range(window)}
    status, _, data = distributed.request(query_url, "GET", f"/api/0/profiles?{urlencode(params)}")
    if status == 404:
        return []
    assert status == 200, f"listing {service}: HTTP {status} {data[:300]!r}"
    return [p["id"] for p in json.loads(data)["body"]]


class Downloads:
    """GETs over one kept-alive connection per thread and server: thousands of downloads then
    cost the query-api and the audit no connection setup each."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._opened: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def get(self, base: str, target: str) -> tuple[int, bytes]:
        """(status, body); (0, b"") when there is no whole answer, the connection then dropped."""
        conns: dict[str, http.client.HTTPConnection] = self._local.__dict__.setdefault("conns", {})
        conn = conns.get(base)
        if conn is None:
            conn = conns[base] = http.client.HTTPConnection(urlsplit(base).netloc, timeout=60)
            with self._lock:
                self._opened.append(conn)
        try:
            conn.request("GET", target)
            resp = conn.getresponse()
            return resp.status, resp.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            del conns[base]
            return 0, b""

    def __enter__(self) -> "Downloads":
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            for conn in self._opened:
                conn.close()


def stored_digests(client: Minio, bucket: str, ids: Iterable[str]) -> dict[str, str]:
    """The MD5 of each of `ids`' blobs as `bucket` holds it; an id without a blob is absent.

    From one listing, of the keys' common prefix (an id starts with its profile's seconds, so a
    scenario's 2,000 share most of theirs): S3's ETag of an object written in one PUT is the MD5 of
    its bytes, computed by the store from what it received. An object whose ETag has another form
    (a multipart upload's, or a store's encryption) is read and hashed instead."""
    wanted = {blob_key(pid): pid for pid in ids}
    if not wanted:
        return {}
    prefix = os.path.commonprefix(list(wanted))
    out: dict[str, str] = {}
    unlike: list[str] = []
    for obj in _retried(lambda: list(client.list_objects(bucket, prefix=prefix, recursive=True))):
        pid = wanted.get(obj.object_name or "")
        if pid is None:
            continue
        etag = (obj.etag or "").strip('"').lower()
        if _MD5.fullmatch(etag):
            out[pid] = etag
        else:
            unlike.append(pid)

    for pid in unlike:
        out[pid] = md5_hex(_retried(lambda pid=pid: read_object(client, bucket, blob_key(pid))))
    return out


_MD5 = re.compile(r"[0-9a-f]{32}")


def _retried(call):
    """`call()`, tried three times: the store may still be settling after a scenario's fault."""
    for attempt in range(3):
        try:
            return call()
        except (MinioException, OSError, HTTPError):
            if attempt == 2:
                raise
            time.sleep(0.5)


def audit(scenario: str, query_urls: list[str], s3: tuple[Minio, str], service: str, load: Load,
          window: tuple[datetime, datetime], fixture_stacks: list[Stacks]) -> Audit:
    """Held to what `load` was told. The listing and the merge come from the query-api at
    `query_urls[0]`; every listed profile's bytes are checked in `s3` (client, bucket), what the
    indexers wrote, and a sample of them is downloaded through the query-api replicas too (spread
    over them, as a load balancer would) and must be served as stored."""
    query_url = query_urls[0]
    acked = {u.id: u for u in load.uploads if u.id}
    began = time.monotonic()
    deadline = began + VISIBLE_TIMEOUT
    while True:
        listed = list_ids(query_url, service, window)
        if set(acked) <= set(listed) or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    def fetch(n: int, pid: str) -> tuple[str, bytes | None]:
        for _ in range(3):
            status, data = downloads.get(query_urls[n % len(query_urls)], f"/api/0/profiles/{pid}")
            if status == 200:
                return pid, data
            time.sleep(0.5)
        return pid, None

    listed_at = time.monotonic()

    def merge() -> tuple[int, bytes, float]:
        params = {"service": service, "type": "cpu", **_range(window)}
        status, _, data = distributed.request(query_url, "GET", f"/api/0/profiles/merge?{urlencode(params)}",
                                              timeout=300)
        return status, data, time.monotonic() - listed_at

    # The merge is asked for beside the reads: each waits on a server, and neither needs the other.
    with ThreadPoolExecutor(1) as beside:
        merging = beside.submit(merge)
        unique = list(dict.fromkeys(listed))
        stored = stored_digests(*s3, unique)
        sample = unique[::max(1, len(unique) // SERVED_SAMPLE)]
        with Downloads() as downloads, ThreadPoolExecutor(8) as pool:
            served = dict(pool.map(fetch, range(len(sample)), sample))
        read_at = time.monotonic()
        status, data, merge_seconds = merging.result()

    result = Audit(scenario, len(acked), 0, statuses=dict(load.statuses),
                   retried=sum(u.tries - 1 for u in load.uploads),
                   refused=[u.refused for u in load.uploads if u.refused])
    for pid, up in acked.items():
        digest = stored.get(pid)
        if digest is None:
            result.lost.append(pid)
        elif digest != up.body.digest:
            result.altered.append(pid)
        else:
            result.found += 1
    sent = {u.body.digest for u in load.uploads if u.body}
    repeats = sum(n - 1 for n in Counter(listed).values())
    for pid in dict.fromkeys(listed):
        if pid in acked:
            continue
        if stored.get(pid) in sent:
            result.duplicated += 1  # a copy under an id nobody was given: a 503'd try that landed too
        else:
            result.strangers.append(pid)
    result.duplicated += repeats
    result.misserved = [pid for pid, data in served.items() if data is None or md5_hex(data) != stored.get(pid)]
    result.phases = {"until listed": listed_at - began, "reads": read_at - listed_at}

    per_fixture = Counter(u.body.fixture for u in acked.values())
    want = sum_stacks((fixture_stacks[k], n) for k, n in per_fixture.items())
    if status != 200:
        result.merge_note = f"merge: HTTP {status} {data[:200]!r}"
    else:
        merged = pprof.parse(data, max_decompressed=1 << 30)
        got = {k: v for k, v in stack_values(merged).items() if any(v)}
        result.merge_equal = got == want
        if not result.merge_equal:
            result.merge_note = (f"merge totals {list(pprof.totals(merged))}, "
                                 f"acknowledged sum {[sum(col) for col in zip(*want.values())]}")
    result.phases["merge"] = merge_seconds  # beside the reads, from the same start
    return result


# -- a scenario ---------------------------------------------------------------------------------

PROFILES = 2000
# Uploads/s: above what the ingest-api takes on 2 cores beside the other suites, so the load goes
# as fast as the machine allows. The outages hold uploads back until the service is down, so
# they still begin with uploads in flight.
RATE = 400.0
FAULT_AFTER = 400  # acknowledged uploads before the fault
# Profiles of a scenario the audit also downloads through the query-api. Every one of the 2000
# is checked in S3 anyway; all 2000 through the API cost the query-apis ~70 core-s of a run, and
# the route does the same for each.
SERVED_SAMPLE = 200
ROWS: list[dict] = []  # one per scenario run, for the table printed at the end


def now_window() -> tuple[datetime, datetime, list[int]]:
    """A window around now, and one distinct time_nanos per upload inside it."""
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)
    base = int(start.timestamp()) * 1_000_000_000 + 60 * 1_000_000_000
    return start, start + timedelta(hours=1), [base + i * 1000 for i in range(PROFILES)]


def run(rig: Rig, scenario: str, service: str, fault, *, times=None, rate: float = RATE,
        hold_last: int = 0) -> Audit:
    """`PROFILES` uploads to `service` while `fault(load)` breaks something, then the audit."""
    start, end, stamps = times if times is not None else now_window()
    load = Load(rig.ingest_url, service, Bodies(rig.fixtures, stamps), rate=rate, hold_last=hold_last).start()
    began = time.monotonic()
    try:
        fault(load)
    finally:
        load.release()
        load.join()
    loaded = time.monotonic() - began
    rig.check_alive()
    result = audit(scenario, rig.query_urls, rig.s3(), service, load, (start, end), rig.fixture_stacks)
    result.seconds = time.monotonic() - began
    result.phases = {"load and fault": loaded, **result.phases}
    ROWS.append(result.row())
    return result


def assert_clean(result: Audit) -> None:
    assert result.acknowledged >= PROFILES, result.row()
    problems = {
        "refused uploads": result.refused[:5],
        "lost (acknowledged, not listed)": result.lost[:10],
        "altered (stored bytes differ)": result.altered[:10],
        "stored twice": result.duplicated,
        "listed, never sent": result.strangers[:10],
        "served unlike as stored": result.misserved[:10],
        "merge": result.merge_note,
    }
    assert result.clean, {k: v for k, v in problems.items() if v}


def indexer_retries(rig: Rig) -> int:
    """Retries of a step the indexers logged (a store or Kafka did not answer), all told."""
    return sum(d.log().count("; retrying in ") for d in rig.indexers)


def table(rows: list[dict]) -> str:
    head = (f"{'scenario':<34} {'acknowledged':>12} {'found':>6} {'lost':>5} {'duplicated':>10} {'merge':>7}"
            f" {'retried':>7} {'seconds':>7}  non-200 answers")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['scenario']:<34} {r['acknowledged']:>12} {r['found']:>6} {r['lost']:>5}"
                     f" {r['duplicated']:>10} {r['merge']:>7} {r['retried']:>7} {r['seconds']:>7}  "
                     + (", ".join(f"{k or 'none'}: {v}" for k, v in r["non_200"].items()) or "-"))
        if r.get("detail"):
            lines.append(f"{'':<4}{r['detail']}")
        if r.get("phases"):
            lines.append(f"{'':<4}seconds: " + ", ".join(f"{k} {v:g}" for k, v in r["phases"].items()))
    return "\n".join(lines)
