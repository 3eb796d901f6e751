"""Headless Debian chromium driven by Playwright (its own browser downloads are never used), and
a screenshot of the page under the test's tmp_path when a test fails."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support import unavailable

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path() -> str | None:
    for candidate in (os.environ.get("PROFEFE_TEST_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright for Python (pip install playwright)")
    path = chromium_path()
    if path is None:
        unavailable("chromium (scripts/browser.sh installs it)")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=path, args=CHROMIUM_ARGS,
            headless=True, viewport={"width": 1400, "height": 900}, accept_downloads=True,
            bypass_csp=True)  # the page forbids eval; the waits of the tests need it
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser, request, tmp_path):
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        shot = tmp_path / "failure.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failed page: {shot}")
    page.close()
    assert not errors, f"the page logged errors: {errors}"
