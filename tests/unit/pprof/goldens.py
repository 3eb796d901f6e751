"""The real Go profiles under tests/testdata and their text goldens (`<profile>.txt`).

`python -m tests.unit.pprof.goldens --update` rewrites every golden from the current `to_text`;
review the diff before committing it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from shared.pprof import parse, to_text

TESTDATA = Path(__file__).resolve().parents[2] / "testdata"


def fixtures(kind: str = "") -> list[Path]:
    """The checked-in profiles (of one type, e.g. "cpu", when given), in numeric order."""
    pattern = f"{kind}-*.pb.gz" if kind else "*.pb.gz"
    return sorted(TESTDATA.glob(pattern), key=lambda p: (p.name.split("-")[0], _number(p)))


def golden_path(profile: Path) -> Path:
    return profile.with_name(profile.name + ".txt")


def render(profile: Path) -> str:
    return to_text(parse(profile.read_bytes()))


def _number(p: Path) -> int:
    return int(p.name.split("-")[1].split(".")[0])


def main(argv: list[str]) -> int:
    if argv != ["--update"]:
        print("usage: python -m tests.unit.pprof.goldens --update", file=sys.stderr)
        return 2
    for profile in fixtures():
        golden_path(profile).write_text(render(profile))
        print(f"wrote {golden_path(profile).relative_to(TESTDATA.parents[1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
