"""shared/pprof stands alone: it imports nothing else of the project."""

from __future__ import annotations

import ast
import subprocess
import sys
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


def test_checking_and_merging_stored_bytes_do_not_load_protobuf() -> None:
    # protobuf's runtime is most of a fresh process's start-up (a one-off merge, a CLI); only
    # building a Profile needs it.
    fixture = Path(__file__).resolve().parents[2] / "testdata" / "cpu-1.pb.gz"
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from shared.pprof import Merger, check\n"
        f"data = Path({str(fixture)!r}).read_bytes()\n"
        "check(data)\n"
        "m = Merger()\n"
        "m.add(data)\n"
        "m.add(data)\n"
        "assert m.write()\n"
        "print(sorted(n for n in sys.modules if n.startswith('google')))\n"
        "from shared.pprof import Profile\n"
        "assert Profile.FromString(m.encode()).sample\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=PACKAGE.parents[1], timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
