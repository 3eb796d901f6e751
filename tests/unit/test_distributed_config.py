"""The distributed roles refuse local-only adapters, and the adapter settings check themselves."""
from __future__ import annotations

import pytest

from services.roles import IndexerRole, IngestApiRole, LocalOnly, MigrateRole, QueryApiRole
from shared.adapters.blobs_s3 import S3Settings
from shared.adapters.queue_kafka import KafkaSettings, _acknowledged_run, record_max_bytes

KAFKA = KafkaSettings(bootstrap="127.0.0.1:9092")
S3 = S3Settings(endpoint="127.0.0.1:9000", access_key="k", secret_key="s")
PG = "postgresql+psycopg://u@127.0.0.1/db"


@pytest.mark.parametrize("cfg, message", [
    (IngestApiRole(kafka=None), "ingest-api: no Kafka bootstrap"),
    (IndexerRole(kafka=KAFKA, s3=S3, database_url="sqlite:///x.db"), "indexer: the metadata database must be PostgreSQL"),
    (IndexerRole(kafka=KAFKA, s3=None, database_url=PG), "indexer: no S3 endpoint"),
    (QueryApiRole(s3=S3, database_url=""), "query-api: no database URL"),
    (MigrateRole(kafka=None, s3=S3, database_url=PG), "migrate: no Kafka bootstrap"),
])
def test_local_only_adapters_are_refused_with_the_reason(cfg, message):
    with pytest.raises(LocalOnly, match=message):
        cfg.validate()


def test_complete_configs_pass():
    IngestApiRole(kafka=KAFKA).validate()
    IndexerRole(kafka=KAFKA, s3=S3, database_url=PG).validate()
    QueryApiRole(s3=S3, database_url=PG).validate()
    MigrateRole(kafka=KAFKA, s3=S3, database_url=PG).validate()


def test_kafka_messages_fit_the_largest_body():
    assert KafkaSettings(bootstrap="b").max_message_bytes > 8 << 20
    assert record_max_bytes(1024) > 1024
    with pytest.raises(ValueError, match="dead-letter topic must differ"):
        KafkaSettings(bootstrap="b", topic="t", dead_letter_topic="t")
    with pytest.raises(ValueError, match="bootstrap"):
        KafkaSettings(bootstrap=" ")


def test_kafka_session_timeout_stays_within_the_brokers_bounds():
    # The broker refuses a group member whose session is outside 6..1800 s (its defaults).
    assert KafkaSettings(bootstrap="b").session_timeout == 10.0
    for wrong in (5.9, 301):
        with pytest.raises(ValueError, match="session_timeout"):
            KafkaSettings(bootstrap="b", session_timeout=wrong)


def test_s3_settings_want_host_port_and_hide_the_secret():
    with pytest.raises(ValueError, match="without a scheme"):
        S3Settings(endpoint="http://127.0.0.1:9000", access_key="k")
    assert "s3cret" not in repr(S3Settings(endpoint="h:1", access_key="k", secret_key="s3cret"))


@pytest.mark.parametrize("pending, want", [
    ({}, None),
    ({5: False, 6: True}, None),  # the oldest is still in hand: commit nothing
    ({5: True, 6: False, 7: True}, 5),  # stop before the first one still in hand
    ({5: True, 6: True, 7: True}, 7),
])
def test_offsets_commit_only_a_run_of_acknowledged_ones(pending, want):
    assert _acknowledged_run(pending) == want
