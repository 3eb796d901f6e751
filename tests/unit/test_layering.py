"""Imports flow one way: pprof imports nothing of ours, shared never imports services, a service
never imports another service; only wiring.py and cli.py see everything."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("ingest_api", "indexer", "compactor", "query_api")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def files(under: str):
    return sorted((ROOT / under).rglob("*.py"))


def test_pprof_imports_nothing_of_ours():
    for f in files("shared/pprof"):
        bad = {m for m in imports_of(f) if m.split(".")[0] == "services" or
               (m.startswith("shared.") and not m.startswith("shared.pprof"))}
        assert not bad, f"{f.relative_to(ROOT)} imports {sorted(bad)}"


def test_shared_never_imports_services():
    for f in files("shared"):
        bad = {m for m in imports_of(f) if m.split(".")[0] == "services"}
        assert not bad, f"{f.relative_to(ROOT)} imports {sorted(bad)}"


def test_a_service_never_imports_another():
    for service in SERVICES:
        for f in files(f"services/{service}"):
            others = {m for m in imports_of(f)
                      for other in SERVICES if other != service and m.startswith(f"services.{other}")}
            assert not others, f"{f.relative_to(ROOT)} imports {sorted(others)}"


def test_the_rule_is_checked_on_real_files():
    assert files("shared/pprof") and files("services/ingest_api") and files("services/query_api")


def test_the_composition_roots_lazy_names_are_the_ones_the_type_checker_sees():
    """services.wiring loads a name's module on first use (`_NAMES`) and names the same for the
    type checker under TYPE_CHECKING: a name in one list only would type-check and then fail."""
    import services.wiring as wiring

    tree = ast.parse((ROOT / "services/wiring/__init__.py").read_text())
    guarded = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    seen = {(node.module, a.name) for node in guarded.body if isinstance(node, ast.ImportFrom) for a in node.names}
    assert seen == {(module, name) for module, names in wiring._NAMES.items() for name in names}
    for module, name in seen:
        assert getattr(wiring, name) is getattr(importlib.import_module(module), name)
