"""KafkaQueue's consumer against the real broker: the broker holds its fetches long only while
the consumer is idle (shared/adapters/queue_kafka.py: `_fetches_wait`). This fails when a
kafka-python release moves what that reaches into; an idle indexer then asks 20 times a second
again, or, were the long wait left on, records behind buffered ones wait for it."""
from __future__ import annotations

import uuid

import pytest

from shared.adapters.queue_kafka import KafkaQueue, KafkaSettings, create_topics
from tests.contract.test_queue import drain, record
from tests.services import drop_topics

pytestmark = pytest.mark.kafka


@pytest.fixture
def queue(kafka_bootstrap: str):
    name = "fetchwait-" + uuid.uuid4().hex[:10]
    settings = KafkaSettings(bootstrap=kafka_bootstrap, topic=name, dead_letter_topic=f"{name}-dead", group=name)
    create_topics(settings, partitions=2)
    q = KafkaQueue(settings)
    try:
        yield q
    finally:
        q.close()
        drop_topics(kafka_bootstrap, settings.topic, settings.dead_letter_topic)


def fetch_wait(q: KafkaQueue) -> int:
    return q._consumer._fetcher.config["fetch_max_wait_ms"]


def test_fetches_wait_long_only_after_a_poll_found_nothing(queue) -> None:
    s = queue.settings
    assert s.idle_fetch_max_wait_ms > s.fetch_max_wait_ms
    queue.poll(max_records=10, timeout=0.5)
    assert fetch_wait(queue) == s.idle_fetch_max_wait_ms
    queue.publish(record(), timeout=30)
    assert len(drain(queue, 1, timeout=30)) == 1
    assert fetch_wait(queue) == s.fetch_max_wait_ms

