"""The web UI in a real browser against `profefe serve` holding the real Go fixtures: the start
page, a linked selection (timeline, flame graph, top table), zoom, search, the sample-type
switch, a diff of two label values, and the pprof download read by `go tool pprof`."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.e2e.embedded import KEEP_FIXTURES, running_serve
from tests.support import unavailable

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

TESTDATA = Path(__file__).resolve().parent.parent / "testdata"
# The fixtures were recorded on 2026-11-25 around 16:06 UTC; their time_nanos is their created_at.
RANGE = {"from": "2026-11-25T15:00:00", "to": "2026-11-25T17:00:00"}


def post(url: str, path: Path, ptype: str, labels: str) -> None:
    query = urlencode({"service": "shop", "type": ptype, "labels": labels})
    req = urllib.request.Request(f"{url}/api/0/profiles?{query}", data=path.read_bytes(), method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    with running_serve(tmp / "data", tmp / "serve.log", *KEEP_FIXTURES) as url:
        for i in range(1, 11):  # 1.4 ran in zone a, 1.5 in zones a and b
            zone = "a" if i <= 7 else "b"
            post(url, TESTDATA / f"cpu-{i}.pb.gz", "cpu", f"version={'1.4' if i <= 5 else '1.5'},zone={zone}")
        for i in (1, 2, 3):
            post(url, TESTDATA / f"heap-{i}.pb.gz", "heap", "version=1.5")
        yield url


def go_bin() -> str:
    found = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if found is None:
        unavailable("the Go toolchain (go tool pprof)")
    return found


def pprof_top(path_or_url: str) -> list[tuple[float, str]]:
    """(flat, function) rows of `go tool pprof -top`, in its order."""
    out = subprocess.run([go_bin(), "tool", "pprof", "-top", "-nodecount=20", path_or_url],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"^\s*(-?[\d.]+)\S*\s+-?[\d.]+%\s+-?[\d.]+%\s+-?[\d.]+\S*\s+-?[\d.]+%\s+(.+)$", line)
        if m:
            rows.append((float(m.group(1)), m.group(2).removesuffix(" (inline)")))
    return rows


def open_view(page, collector: str, **params: str) -> None:
    page.goto(f"{collector}/ui/?{urlencode(params)}")
    page.wait_for_function("document.body.dataset.ready && document.body.dataset.ready !== ''", timeout=30_000)
    assert page.evaluate("document.body.dataset.ready") in ("start", "flame"), page.inner_text("#message")


def test_the_start_page_lists_the_services(page, collector):
    open_view(page, collector)
    assert page.inner_text("#service-list").split() == ["shop"]
    page.click("#service-list a")
    page.wait_for_function("document.body.dataset.ready !== ''")
    assert "service=shop" in page.url


def test_a_link_shows_timeline_flame_graph_and_the_hot_functions_first(page, collector):
    open_view(page, collector, service="shop", type="cpu", **RANGE)
    assert page.is_visible("#timeline") and page.is_visible("#flame")
    assert int(page.get_attribute("#flame", "data-drawn") or 0) > 20
    counted = page.evaluate("document.getElementById('timeline').timeline.profiles.reduce((a, b) => a + b, 0)")
    assert counted == 10
    merged = f"{collector}/api/0/profiles/merge?{urlencode({'service': 'shop', 'type': 'cpu', **RANGE})}"
    expected = [name for _flat, name in pprof_top(merged)[:3]]
    shown = page.eval_on_selector_all("#top tbody tr", "rows => rows.slice(0, 3).map(r => r.dataset.name)")
    assert shown == expected


def test_zoom_search_and_the_sample_type_switch(page, collector):
    open_view(page, collector, service="shop", type="cpu", **RANGE)
    first = page.eval_on_selector("#top tbody tr", "r => r.dataset.name")
    page.click("#top tbody tr")  # a row focuses its function: zoomed, and its frames highlighted
    assert "focus=" in page.url and "search=" in page.url
    assert re.search(r"matches hold \d+\.\d\d% of the total", page.inner_text("#search-share"))
    # Zoom by clicking the frame drawn at the left of the second row, then reset.
    box = page.locator("#flame").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 5, box["y"] + 18 + 9)
    assert "focus=" in page.url
    page.click("#reset-zoom")
    assert "focus=" not in page.url
    page.fill("#search", "runtime\\.")
    assert "of the total" in page.inner_text("#search-share")
    page.select_option("#sample_type", "samples")
    page.wait_for_function("document.body.dataset.ready === 'flame'")
    assert "sample_type=samples" in page.url
    assert page.eval_on_selector("#top tbody tr", "r => r.dataset.name")
    assert first


OPTIONS = "want => [...document.querySelectorAll('#label-options option')].map(o => o.value).join(' ') === want"


def test_label_completion_offers_the_values_beside_the_pairs_already_chosen(page, collector):
    open_view(page, collector, service="shop", type="cpu", **RANGE)
    page.fill("#labels", "version=1.4,")
    page.wait_for_function(OPTIONS, arg="version=1.4,zone=a", timeout=10_000)
    page.fill("#labels", "version=1.5,zone=")
    page.wait_for_function(OPTIONS, arg="version=1.5,zone=a version=1.5,zone=b", timeout=10_000)
    page.fill("#labels", "zone=b,version=")
    page.wait_for_function(OPTIONS, arg="zone=b,version=1.5", timeout=10_000)


def test_heap_defaults_to_the_mean_and_says_so(page, collector):
    open_view(page, collector, service="shop", type="heap", **RANGE)
    assert page.input_value("#agg") == "mean"
    assert "mean per profile: 3 profiles" in page.inner_text("#agg-note")


def test_a_diff_of_two_label_values(page, collector):
    open_view(page, collector, service="shop", type="cpu", view="diff", labels="version=1.5",
              base_labels="version=1.4", **RANGE)
    assert "5 base and 5 target" in page.inner_text("#agg-note")
    headers = page.eval_on_selector_all("#top thead th", "ths => ths.map(t => t.textContent)")
    assert any("share change" in h for h in headers)
    assert page.locator("#top tbody tr").count() > 5
    command = page.inner_text("#command")
    assert "/api/0/profiles/diff?" in command and "base_labels=version%3D1.4" in command


def test_the_download_is_a_pprof_that_go_tool_pprof_opens(page, collector, tmp_path):
    open_view(page, collector, service="shop", type="cpu", **RANGE)
    with page.expect_download() as info:
        page.click("#download")
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(str(saved))
    rows = pprof_top(str(saved))
    assert rows and rows[0][1] == page.eval_on_selector("#top tbody tr", "r => r.dataset.name")
    command = page.inner_text("#command")
    assert command.startswith("go tool pprof '") and "/api/0/profiles/merge?" in command


def test_the_apis_answer_without_the_ui(collector):
    q = urlencode({"service": "shop", "type": "cpu", **RANGE})
    with urllib.request.urlopen(f"{collector}/api/0/labels?{q}") as resp:
        assert json.loads(resp.read())["body"] == {"types": ["cpu", "heap"],
                                                   "labels": {"version": ["1.4", "1.5"], "zone": ["a", "b"]}}
    diff = f"{collector}/api/0/profiles/diff?{q}&labels=version%3D1.5&base_labels=version%3D1.4"
    assert pprof_top(diff)
