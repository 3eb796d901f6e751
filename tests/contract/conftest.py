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
from tests.support import unavailable


@pytest.fixture
def ns() -> str:
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture(params=["local"])
def blob_store(request, tmp_path):
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    raise AssertionError(request.param)


def _postgres_url(request) -> str:
    try:
        return request.getfixturevalue("postgres_url")
    except pytest.FixtureLookupError:
        unavailable("a PostgreSQL server (the postgres_url fixture)")
    raise AssertionError("unreachable")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def meta_store(request, tmp_path) -> Iterator[SqlMetaStore]:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "meta.db")
    else:
        url = _postgres_url(request)
    migrate(url)
    store = SqlMetaStore(url)
    yield store
    store.close()


QueueFactory = Callable[[], object]


@pytest.fixture(params=["memory"])
def queue_factory(request) -> Iterator[QueueFactory]:
    """Makes consumers/producers of one topic; a new one sees what closed ones left uncommitted."""
    made = []
    if request.param == "memory":
        topic = MemoryTopic()

        def make():
            made.append(MemoryQueue(topic))
            return made[-1]
    else:
        raise AssertionError(request.param)
    yield make
    for q in made:
        q.close()
