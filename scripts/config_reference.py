#!/usr/bin/env python3
"""Writes `profefe config --reference` into docs/configuration.md between its markers, or with
--check exits 1 when the file is out of date (the unit suite runs the check)."""
from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner

from services.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
BEGIN = "<!-- generated: profefe config-reference -->"
END = "<!-- end generated -->"


def expected(text: str) -> str:
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    reference = CliRunner().invoke(main, ["config", "--reference"], catch_exceptions=False).output
    return f"{head}{BEGIN}\n{reference}{END}{tail}"


def main_(argv: list[str]) -> int:
    text = DOC.read_text()
    if BEGIN not in text or END not in text:
        print(f"{DOC}: the markers {BEGIN} and {END} are missing", file=sys.stderr)
        return 1
    want = expected(text)
    if "--check" in argv:
        if text != want:
            print(f"{DOC} is out of date: run `make docs`", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(want)
    return 0


if __name__ == "__main__":
    sys.exit(main_(sys.argv[1:]))
