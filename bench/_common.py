"""What the benchmarks share: a loopback guard, a keep-alive client, fixtures, stats, results."""
from __future__ import annotations

import http.client
import ipaddress
import json
import math
import os
import platform
import secrets
import socket
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = ROOT / "tests" / "testdata"
RESULTS = ROOT / "bench" / "results"

if str(ROOT) not in sys.path:  # run as `python bench/x.py` from anywhere
    sys.path.insert(0, str(ROOT))


class BenchError(Exception):
    """The benchmark cannot run or its results are wrong."""


def loopback_base(url: str) -> urllib.parse.SplitResult:
    """The parsed collector URL, refused unless every address it resolves to is loopback."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise BenchError(f"{url!r}: give http://127.0.0.1:PORT")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 80, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise BenchError(f"{parts.hostname}: {exc}") from exc
    for info in infos:
        if not ipaddress.ip_address(info[4][0]).is_loopback:
            raise BenchError(f"{parts.hostname} resolves to {info[4][0]}: benchmarks only target loopback")
    return parts


class Client:
    """One keep-alive HTTP/1.1 connection; no retries, so every failure is counted."""

    def __init__(self, base: urllib.parse.SplitResult, timeout: float = 60.0):
        self._netloc = base.netloc
        self._prefix = base.path.rstrip("/")
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(self, method: str, target: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self._netloc, timeout=self._timeout)
        try:
            self._conn.request(method, self._prefix + target, body=body, headers=headers or {})
            resp = self._conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if resp.will_close:
            self.close()
        return resp.status, data

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def closest_fixture(pattern: str, target_bytes: int) -> Path:
    """The non-empty file under tests/testdata matching `pattern` whose size is nearest the target."""
    candidates = [p for p in TESTDATA.glob(pattern) if p.stat().st_size > 0]
    if not candidates:
        raise BenchError(f"no {pattern} under {TESTDATA}: run `make fixtures`")
    return min(candidates, key=lambda p: (abs(p.stat().st_size - target_bytes), p.name))


def run_service(kind: str) -> str:
    """A service name no earlier run used, so reruns against one server never mix."""
    return f"bench-{kind}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0 < q <= 100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def server_version(client: Client) -> dict:
    try:
        status, data = client.request("GET", "/api/0/version")
        body = json.loads(data).get("body") if status == 200 else None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise BenchError(f"the collector does not answer /api/0/version: {exc}") from exc
    return body if isinstance(body, dict) else {}


def machine() -> dict:
    """Where the numbers came from; the load average says how much else was running."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_1m_5m_15m": [round(x, 2) for x in os.getloadavg()],
    }


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants, from the parent pids in /proc (empty once it has exited)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # exited while we looked
            continue
        # The command name in parentheses may hold spaces; the fields after it are fixed.
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    if not Path(f"/proc/{pid}").exists():
        return []
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of `pid` and its live descendants, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in process_tree(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:  # exited while we looked
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state, ppid, ...
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def write_result(name: str, result: dict) -> Path:
    """A new file under bench/results/: two runs ending in the same second (benches run side by
    side) get two files, the second with a `-2` (`-3`, ...) suffix, instead of one overwriting."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = f"{name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    text = json.dumps(result, indent=2, sort_keys=True) + "\n"
    for n in range(1, 1000):
        path = RESULTS / (f"{stem}.json" if n == 1 else f"{stem}-{n}.json")
        try:
            with open(path, "x") as f:  # exclusive: fails if another run made it first
                f.write(text)
        except FileExistsError:
            continue
        return path
    raise BenchError(f"no free name for {stem} under {RESULTS}")


def load_embedded(cfg, fixture: Path, times: "list[int]", params: dict[str, str]) -> int:
    """The fixture re-timed to each of `times` (epoch seconds) stored in the embedded collector of
    `cfg` through ingest's own checks, 500 to an index batch, then compacted until a pass finds
    nothing left to do. Returns how many were stored. (Project imports stay inside: the other
    benches use this module against profefe too.)"""
    from datetime import datetime, timezone

    from services import wiring
    from services.indexer.steps import index
    from services.ingest_api import collect
    from services.ingest_api.config import IngestConfig
    from shared import pprof

    base = pprof.parse(fixture.read_bytes())
    ports = wiring.open_embedded(cfg)
    ingest, batch = IngestConfig(), []
    for at in times:
        base.time_nanos = at * 1_000_000_000
        batch.append(collect.collect(params, pprof.write(base), ingest, clock=lambda: datetime.now(timezone.utc)))
        if len(batch) == 500:
            index(batch, ports.blobs, ports.meta)
            batch = []
    index(batch, ports.blobs, ports.meta)
    compactor = wiring.embedded_compactor(ports, cfg)
    while True:
        report = compactor.run_pass()
        if not (report.hours or report.rebuilt or report.days):
            break
    ports.close()
    return len(times)
