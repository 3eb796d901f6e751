"""shared/pprof stands alone: it imports nothing else of the project."""

from __future__ import annotations

import ast
from pathlib import Path

import shared.pprof

PACKAGE = Path(shared.pprof.__file__).parent
PROJECT_PACKAGES = ("shared", "services", "tests", "bench")


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_pprof_library_imports_only_itself_of_the_project() -> None:
    offenders = {
        f"{path.name}: {module}"
        for path in PACKAGE.glob("*.py")
        for module in _imported_modules(path)
        if module.split(".")[0] in PROJECT_PACKAGES and not module.startswith("shared.pprof")
    }
    assert not offenders
    assert len(list(PACKAGE.glob("*.py"))) > 5  # the walk did see the package
