"""What the suites share: how a missing real dependency is reported.

Locally a test that needs a service or a tool that is not there is skipped; when `CI` is set the
same test fails, so CI can never pass by skipping.
"""
from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(what: str) -> None:
    """Skip (locally) or fail (in CI) because `what` cannot be had."""
    if in_ci():
        pytest.fail(f"{what} is required in CI but is not available", pytrace=False)
    pytest.skip(f"{what} is not available (when CI is set this fails instead)")
