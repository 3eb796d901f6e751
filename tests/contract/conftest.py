"""One contract per port, run against every adapter: add an adapter by adding a fixture param.

Adapters backed by a shared server (PostgreSQL, S3, Kafka) see data from other tests, so every
case works inside its own `ns` (a unique prefix for services, keys and topics).
"""
from __future__ import annotations

import uuid
from typing import Callable, Iterator

import pytest

from shared.adapters.blobs_local import LocalBlobStore
from shared.adapters.meta_sql import SqlMetaStore, migrate, sqlite_url
from shared.adapters.queue_memory import MemoryQueue, MemoryTopic
from tests.services import Database
from tests.support import unavailable


@pytest.fixture
def ns() -> str:
    return "t" + uuid.uuid4().hex[:12]


def _service(request, fixture: str, what: str):
    """A fixture of tests/services.py (a real server); skipped locally, failed in CI without it."""
    try:
        return request.getfixturevalue(fixture)
    except pytest.FixtureLookupError:
        unavailable(f"{what} (the {fixture} fixture)")
    raise AssertionError("unreachable")


def s3_test_settings(raw, bucket: str):
    """`S3Settings` for `bucket` from the s3_settings fixture (settings object or mapping)."""
    from shared.adapters.blobs_s3 import S3Settings

    fields = raw if isinstance(raw, dict) else vars(raw)
    return S3Settings(endpoint=fields["endpoint"], access_key=fields.get("access_key", ""),
                      secret_key=fields.get("secret_key", ""), secure=bool(fields.get("secure", False)),
                      region=fields.get("region"), bucket=bucket)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def blob_store(request, tmp_path):
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    if request.param == "s3":
        from shared.adapters.blobs_s3 import S3BlobStore, create_bucket

        from tests.services import drop_bucket

        raw = _service(request, "s3_settings", "an S3-compatible store")
        settings = s3_test_settings(raw, "profefe-contract-" + uuid.uuid4().hex[:12])
        create_bucket(settings)
        request.addfinalizer(lambda: drop_bucket(raw, settings.bucket))
        return S3BlobStore(settings)
    raise AssertionError(request.param)


def _postgres_url(request) -> str:
    return _service(request, "postgres_url", "a PostgreSQL server")


def own_database_url(request, prefix: str) -> str:
    """The URL of a PostgreSQL database made for this test alone, dropped after it."""
    db = Database(_postgres_url(request), prefix + uuid.uuid4().hex[:10])
    request.addfinalizer(db.drop)
    return db.url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def meta_store(request, tmp_path) -> Iterator[SqlMetaStore]:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "meta.db")
    else:
        every_service = request.node.get_closest_marker("every_service") is not None
        url = own_database_url(request, "profefe_alone_") if every_service else _postgres_url(request)
    migrate(url)
    store = SqlMetaStore(url)
    yield store
    store.close()


QueueFactory = Callable[[], object]


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def queue_factory(request, ns) -> Iterator[QueueFactory]:
    """Makes consumers/producers of one topic; a new one sees what closed ones left uncommitted."""
    made = []
    if request.param == "memory":
        topic = MemoryTopic()

        def make():
            made.append(MemoryQueue(topic))
            return made[-1]
    elif request.param == "kafka":
        from shared.adapters.queue_kafka import KafkaQueue, KafkaSettings, create_topics

        bootstrap = _service(request, "kafka_bootstrap", "a Kafka broker")
        # One partition: the contract promises the order of one log, as the memory queue keeps it.
        settings = KafkaSettings(bootstrap=bootstrap, topic=f"contract-{ns}", dead_letter_topic=f"contract-{ns}-dead",
                                 group=f"contract-{ns}")
        create_topics(settings, partitions=1)

        def make():
            made.append(KafkaQueue(settings))
            return made[-1]
    else:
        raise AssertionError(request.param)
    yield make
    for q in made:
        q.close()
    if request.param == "kafka":
        from tests.services import drop_topics

        drop_topics(bootstrap, settings.topic, settings.dead_letter_topic)
