"""Fixtures shared by every suite."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.support import unavailable

# kafka_bootstrap, s3_settings, postgres_url: the real services (see tests/services.py).
pytest_plugins = ["tests.services"]


@pytest.fixture(scope="session")
def go_bin() -> str:
    """The Go toolchain, for `go tool pprof` and the fixture generator."""
    go = shutil.which("go")
    if go is None:
        unavailable("the Go toolchain (`go`)")
    try:
        subprocess.run([go, "version"], check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        unavailable(f"a working `go` ({exc})")
    return go
