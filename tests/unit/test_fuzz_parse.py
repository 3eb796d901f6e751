"""A short run of bench/fuzz_parse.py's target (the long run is the bench script itself): every
input it generates, bombs and damaged gzip streams included, ends in a typed error or a usable
profile."""
from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_fuzz_parse():
    import sys

    sys.path.insert(0, str(BENCH))  # the script imports its sibling `_common`
    try:
        spec = importlib.util.spec_from_file_location("fuzz_parse", BENCH / "fuzz_parse.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def test_a_short_fuzz_run_sees_only_typed_errors():
    result = load_fuzz_parse().run(150)
    assert result["ok"], result["failures"]
    assert result["inputs_run"] >= 150
    assert set(result["outcomes"]) <= {"parsed", "MalformedProfile", "ProfileTooLarge"}
    assert result["outcomes"].get("MalformedProfile")
