"""examples/hotapp, profiled by profefe's own Go agent, sending to `profefe serve`; then
`go tool pprof` reads the merge back and must name the app's hot function."""
from __future__ import annotations

import os
import subprocess
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.e2e.embedded import get_json, running_serve

pytestmark = [pytest.mark.e2e, pytest.mark.go]

HOTAPP = Path(__file__).resolve().parents[2] / "examples" / "hotapp"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
# The agent waits 1-9 s of jitter before each profile, so one CPU + heap round takes up to ~25 s.
PROFILES_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def hotapp_bin(go_bin, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hotapp") / "hotapp"
    built = subprocess.run(
        [go_bin, "build", "-o", str(out), "."], cwd=HOTAPP, capture_output=True, text=True, timeout=600,
    )
    assert built.returncode == 0, f"go build ./examples/hotapp failed:\n{built.stderr}"
    return out


def window(since: datetime) -> dict[str, str]:
    now = datetime.now(timezone.utc)
    return {"from": since.strftime(TIME_FORMAT), "to": (now + timedelta(minutes=1)).strftime(TIME_FORMAT)}


def wait_for_profiles(url: str, since: datetime, app: subprocess.Popen) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    deadline = time.monotonic() + PROFILES_TIMEOUT
    while time.monotonic() < deadline and len(found) < 2:
        assert app.poll() is None, f"hotapp exited early with {app.returncode}"
        for ptype in ("cpu", "heap"):
            query = urllib.parse.urlencode({"service": "hotapp", "type": ptype, **window(since)})
            status, envelope = get_json(f"{url}/api/0/profiles?{query}")
            if status == 200:
                found[ptype] = envelope["body"]
            else:
                assert status == 404, envelope
        time.sleep(1)
    return found


def pprof_top(go_bin: str, tmp_path: Path, url: str, *flags: str) -> str:
    env = {**os.environ, "PPROF_TMPDIR": str(tmp_path / "pprof")}  # not into ~/pprof
    done = subprocess.run(
        [go_bin, "tool", "pprof", "-top", "-cum", *flags, url],
        capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_hotapp_profiles_arrive_and_pprof_names_the_hot_path(go_bin, hotapp_bin, tmp_path):
    with running_serve(tmp_path / "data", tmp_path / "serve.log") as url:
        since = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=5)
        log = open(tmp_path / "hotapp.log", "wb")
        app = subprocess.Popen(
            [str(hotapp_bin), "-collector", url, "-tick", "1s", "-cpu-duration", "2s",
             "-labels", "env=e2e,build=1.0+test", "-run-for", f"{PROFILES_TIMEOUT + 30:.0f}s"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            found = wait_for_profiles(url, since, app)
        finally:
            app.terminate()
            app.wait(timeout=30)
            log.close()
        hotapp_log = (tmp_path / "hotapp.log").read_text()
        assert set(found) == {"cpu", "heap"}, f"profiles seen: {found}\nhotapp log:\n{hotapp_log}"
        labels = {(lb["key"], lb["value"]) for lb in found["cpu"][0]["labels"]}
        assert labels == {("env", "e2e"), ("build", "1.0+test")}

        merge = f"{url}/api/0/profiles/merge?" + urllib.parse.urlencode(
            {"service": "hotapp", "type": "cpu", **window(since)})
        cpu_top = pprof_top(go_bin, tmp_path, merge)
        assert "main.checksumRecords" in cpu_top, cpu_top

        heap_merge = merge.replace("type=cpu", "type=heap")
        heap_top = pprof_top(go_bin, tmp_path, heap_merge, "-sample_index=alloc_space")
        assert "main.buildRecords" in heap_top, heap_top
