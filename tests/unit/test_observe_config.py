"""`profefe config`: defaults, then variables, then flags, each with its source; secrets redacted."""
from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from services.cli import DAEMON_ROLES, main
from services.config_report import REDACTED, redact


def run(*args: str, **env: str):
    clean = {k: None for k in os.environ if k.startswith("PROFEFE_")}
    return CliRunner().invoke(main, ["config", *args], env={**clean, **env})


def as_json(*args: str, **env: str) -> dict:
    result = run("--json", *args, **env)
    assert result.exit_code == 0, result.output
    return {section: {r["flag"]: r for r in rows} for section, rows in json.loads(result.output).items()}


def test_flags_beat_variables_beat_defaults():
    got = as_json("indexer", "--batch-size", "50", PROFEFE_BATCH_SIZE="70", PROFEFE_KAFKA_GROUP="g1")["indexer"]
    assert got["--batch-size"]["value"] == 50 and got["--batch-size"]["source"] == "flag"
    assert got["--kafka-group"] == {"flag": "--kafka-group", "env": "PROFEFE_KAFKA_GROUP", "value": "g1",
                                    "source": "env"}
    assert got["--kafka-topic"]["value"] == "profefe-profiles" and got["--kafka-topic"]["source"] == "default"


def test_secrets_never_print():
    env = {"PROFEFE_S3_SECRET_KEY": "s3-hunter2", "PROFEFE_S3_ACCESS_KEY": "AKIA1",
           "PROFEFE_DATABASE_URL": "postgresql+psycopg://bob:pg-hunter2@db:5432/profefe"}
    for args in ((), ("migrate",), ("query-api", "--s3-secret-key", "flag-hunter2")):
        for fmt in ((), ("--json",)):
            result = run(*fmt, *args, **env)
            assert result.exit_code == 0, result.output
            assert "hunter2" not in result.output
            assert REDACTED in result.output and "bob:" in result.output and "AKIA1" in result.output


def test_every_role_when_none_is_named():
    sections = as_json()
    assert set(sections) == {"global", *DAEMON_ROLES}
    assert sections["global"]["--log-format"]["value"] == "text"
    assert sections["serve"]["--addr"]["value"] == "127.0.0.1:10100"
    assert sections["compactor"]["--grace"]["value"] == 300


def test_a_bad_value_or_a_flag_without_a_role_is_a_usage_error():
    assert run("indexer", "--batch-size", "x").exit_code == 2
    assert run("indexer", "--no-such-flag").exit_code == 2
    assert run("--batch-size", "5").exit_code == 2


def test_text_output_names_each_source():
    result = run("ingest-api", "--threads", "4", PROFEFE_KAFKA_BOOTSTRAP="k:9092")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "# profefe ingest-api" in lines
    assert any(line.startswith("--threads") and line.endswith("4  (flag)") for line in lines)
    assert any(line.startswith("--kafka-bootstrap") and line.endswith("k:9092  (env PROFEFE_KAFKA_BOOTSTRAP)")
               for line in lines)


@pytest.mark.parametrize("name,value,shown", [
    ("database_url", "postgresql://u:p%40ss@h/db", f"postgresql://u:{REDACTED}@h/db"),
    ("database_url", "postgresql://u@h/db", "postgresql://u@h/db"),
    ("database_url", "postgresql://h/db?password=x&sslmode=require", f"postgresql://h/db?password={REDACTED}&sslmode=require"),
    ("s3_secret_key", "abc", REDACTED),
    ("s3_secret_key", "", ""),
    ("auth_token", "abc", REDACTED),
    ("read_tokens", "t1,t2", REDACTED),
    ("read_tokens_file", "/run/secrets/read-tokens", "/run/secrets/read-tokens"),
    ("kafka_bootstrap", "a:9092,b:9092", "a:9092,b:9092"),
    ("raw_retention_for", ["a=2d"], ["a=2d"]),
])
def test_redact(name, value, shown):
    assert redact(name, value) == shown
