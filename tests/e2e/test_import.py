"""`profefe import` against `profefe serve`, both as real processes."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import urllib.parse
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.embedded import KEEP_FIXTURES, get_bytes, get_json, profefe_command, running_serve

pytestmark = pytest.mark.e2e

TESTDATA = Path(__file__).resolve().parent.parent / "testdata"
WINDOW = {"from": "2000-01-01T00:00:00", "to": "2100-01-01T00:00:00"}
LABELS = [("build", "1.2+rc,1"), ("team", "a b=c"), ("percent", "100%")]


@pytest.fixture(scope="module")
def serve_url(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    with running_serve(tmp / "data", tmp / "serve.log", *KEEP_FIXTURES) as url:
        yield url


def cpu_fixtures() -> list[Path]:
    found = sorted(p for p in TESTDATA.glob("cpu-*.pb.gz") if p.stat().st_size > 0)
    assert len(found) >= 3, f"expected real CPU profiles under {TESTDATA} (make fixtures)"
    return found


def profefe_import(url: str, service: str, *args: str) -> subprocess.CompletedProcess[str]:
    labels = [arg for key, value in LABELS for arg in ("--label", f"{key}={value}")]
    return subprocess.run(
        [*profefe_command(), "import", "--url", url, "--service", service, "--type", "cpu", *labels, *args],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )


def listed(url: str, service: str) -> list[dict]:
    status, envelope = get_json(f"{url}/api/0/profiles?" + urllib.parse.urlencode({"service": service, **WINDOW}))
    if status == 404:
        return []
    assert status == 200, envelope
    return envelope["body"]


def test_import_uploads_every_file_of_a_folder(serve_url, tmp_path):
    files = cpu_fixtures()
    folder = tmp_path / "profiles"
    (folder / "nested").mkdir(parents=True)
    for i, src in enumerate(files):
        shutil.copy(src, folder / ("nested" if i % 2 else "") / src.name)

    done = profefe_import(serve_url, "imported", str(folder))

    assert done.returncode == 0, done.stderr
    assert f"{len(files)} uploaded, 0 failed" in done.stdout
    profiles = listed(serve_url, "imported")
    assert len(profiles) == len(files)
    for profile in profiles:
        assert profile["type"] == "cpu"
        assert sorted((lb["key"], lb["value"]) for lb in profile["labels"]) == sorted(LABELS)
    stored = Counter(
        hashlib.sha256(get_bytes(f"{serve_url}/api/0/profiles/{p['id']}")).hexdigest() for p in profiles
    )
    assert stored == Counter(hashlib.sha256(f.read_bytes()).hexdigest() for f in files)


def test_import_names_a_refused_file_and_exits_non_zero(serve_url, tmp_path):
    good = cpu_fixtures()[0]
    bad = tmp_path / "truncated.pb.gz"
    bad.write_bytes(good.read_bytes()[:100])

    done = profefe_import(serve_url, "partly", str(good), str(bad))

    assert done.returncode == 1
    assert f"failed: {bad}: HTTP 400: malformed profile" in done.stderr
    assert "1 uploaded, 1 failed" in done.stdout
    assert len(listed(serve_url, "partly")) == 1


def test_import_reports_an_unreachable_collector(tmp_path):
    good = cpu_fixtures()[0]
    done = profefe_import("http://127.0.0.1:1", "nowhere", "--attempts", "1", str(good))
    assert done.returncode == 1
    assert f"failed: {good}: cannot reach http://127.0.0.1:1" in done.stderr
