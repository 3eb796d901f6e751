"""The shape of the code a newcomer relies on: the configuration reference matches the flags,
product files stay small, and every setting is declared once with a help text."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from services.cli import DAEMON_ROLES, main

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400


def test_the_configuration_reference_is_generated_from_the_configs():
    run = subprocess.run([sys.executable, "scripts/config_reference.py", "--check"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_product_files_stay_small():
    big = {}
    for path in [*ROOT.glob("services/**/*.py"), *ROOT.glob("shared/**/*.py")]:
        if path.name.endswith("_pb2.py"):
            continue
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            big[str(path.relative_to(ROOT))] = lines
    assert not big, f"over {MAX_LINES} lines: {big}"
    assert len((ROOT / "services/cli.py").read_text().splitlines()) < 250


def test_every_role_option_has_help_and_its_own_variable():
    for role in DAEMON_ROLES:
        cmd = main.commands[role]
        options = [p for p in cmd.params if isinstance(p, click.Option) and p.name != "help"]
        assert options, role
        variables = [p.envvar for p in options]
        assert all(p.help for p in options), role
        assert all(isinstance(v, str) and v.startswith("PROFEFE_") for v in variables), (role, variables)
        assert len(set(variables)) == len(variables), (role, variables)
