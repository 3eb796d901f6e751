"""The table of required variables the deploy tests rely on is the CLI's own rule."""
from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from services.process import logs
from services.cli import main
from tests.deploy import facts

VALUES = {
    "PROFEFE_KAFKA_BOOTSTRAP": "kafka:9092",
    "PROFEFE_S3_ENDPOINT": "minio:9000",
    "PROFEFE_DATABASE_URL": "postgresql+psycopg://profefe:secret@postgres:5432/profefe",
}


@pytest.mark.parametrize("role,missing", [(r, v) for r, vs in sorted(facts.REQUIRED.items()) for v in sorted(vs)])
def test_a_role_refuses_to_start_without_each_required_variable(monkeypatch, role, missing):
    monkeypatch.setattr(logs, "configure_logging", lambda fmt="text": None)
    env = {k: None for k in os.environ if k.startswith("PROFEFE_")}
    env.update({k: VALUES[k] for k in facts.REQUIRED[role] if k != missing})
    result = CliRunner().invoke(main, [role], env=env)
    assert result.exit_code == 2, result.output
    assert missing in result.output


def test_every_role_of_the_table_is_a_command_that_reads_its_variables():
    for role, required in facts.REQUIRED.items():
        assert required <= facts.variables(role), role


def test_an_unknown_flag_is_caught():
    with pytest.raises(AssertionError, match="no option --no-such-flag"):
        facts.check_args(["indexer", "--no-such-flag"])
    with pytest.raises(AssertionError, match="not a command"):
        facts.check_args(["indexr"])
