"""`profefe serve` with its compactor thread, as a real subprocess: profiles of closed hours are
compacted in the background, the merge answers the same profile as a raw merge, and SIGTERM
stops the server and the compactor with exit 0."""
from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from shared import pprof
from shared.model import format_time
from tests.e2e.embedded import _wait_until_up, free_port, get_json, profefe_command

pytestmark = pytest.mark.e2e

TESTDATA = Path(__file__).resolve().parents[1] / "testdata"


def post(url: str, at: datetime, labels: str, n: int) -> None:
    p = pprof.parse((TESTDATA / f"cpu-{n % 10 + 1}.pb.gz").read_bytes())
    p.time_nanos = int(at.timestamp()) * 1_000_000_000
    req = urllib.request.Request(f"{url}/api/0/profiles?service=e2e&type=cpu&labels={labels}",
                                 data=pprof.write(p), method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200


def merged_totals(url: str, start: datetime, end: datetime, extra: str = "") -> tuple:
    q = f"service=e2e&type=cpu&from={format_time(start)[:-1]}&to={format_time(end)[:-1]}{extra}"
    with urllib.request.urlopen(f"{url}/api/0/profiles/merge?{q}", timeout=60) as resp:
        p = pprof.parse(resp.read())
    return pprof.totals(p), p.duration_nanos, len(p.sample)


def test_serve_compacts_closed_hours_in_the_background(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROFEFE_")}
    env["PROFEFE_COMPACT_INTERVAL"] = "0.5"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([*profefe_command(), "serve", "--addr", f"127.0.0.1:{port}",
                                 "--data-dir", str(tmp_path / "data"), "--grace", "1m"],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_until_up(proc, url, log_path)
        day = (datetime.now(timezone.utc) - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
        n = 0
        for hour in range(0, 24, 5):
            for labels in ("env=prod", "env=dev"):
                for minute in (3, 31):
                    post(url, day + timedelta(hours=hour, minutes=minute), labels, n)
                    n += 1
        whole_day = (day, day + timedelta(days=1) - timedelta(seconds=1))
        raw = merged_totals(url, *whole_day, extra="&limit=1000")  # limit reads raw profiles
        windows_dir = tmp_path / "data" / "blobs" / "windows"
        deadline = time.monotonic() + 60
        # A day may be built before its last hour's uploads arrive (and rebuilt after): wait for
        # every hour's window too, one per label set and hour with uploads, and a day per label set.
        # A rebuild writes its new blob before it deletes the old one: exact counts, waited for.
        counts = (0, 0)
        while counts != (10, 2):
            assert time.monotonic() < deadline, f"{counts} windows (hourly, daily):\n{log_path.read_text()}"
            time.sleep(0.5)
            counts = (len(list(windows_dir.rglob("hour-*"))), len(list(windows_dir.rglob("day-*"))))
        assert merged_totals(url, *whole_day) == raw
        status, body = get_json(f"{url}/api/0/profiles?service=e2e&from={format_time(day)[:-1]}"
                                f"&to={format_time(whole_day[1])[:-1]}")
        assert status == 200 and len(body["body"]) == n  # nothing is pruned within 7 days
    finally:
        proc.terminate()
        code = proc.wait(timeout=60)
    assert code == 0, log_path.read_text()
