"""KafkaQueue's producer against the real broker keeps the two mends of kafka-python 3's sender
(shared/adapters/queue_kafka.py: `_sender_backs_off`), without which an ingest-api spent a whole
core for as long as Kafka was away. These fail when a kafka-python release changes what the
mends reach into, which is when they must be looked at again (the fault suite's Kafka outage
shows the CPU they save)."""
from __future__ import annotations

import uuid

import pytest

from shared.adapters.queue_kafka import KafkaQueue, KafkaSettings, create_topics
from tests.contract.test_queue import record
from tests.services import drop_topics

pytestmark = pytest.mark.kafka


@pytest.fixture
def producer(kafka_bootstrap: str):
    name = "backoff-" + uuid.uuid4().hex[:10]
    settings = KafkaSettings(bootstrap=kafka_bootstrap, topic=name, dead_letter_topic=f"{name}-dead", group=name)
    create_topics(settings, partitions=1)
    queue = KafkaQueue(settings)
    try:
        queue.publish(record(), timeout=30)
        assert queue._producer is not None
        yield queue._producer
    finally:
        queue.close()
        drop_topics(kafka_bootstrap, settings.topic, settings.dead_letter_topic)


def test_the_sender_reads_a_reconnect_backoff_in_milliseconds(producer) -> None:
    client = producer._sender._client
    node = next(iter(producer._metadata.brokers())).node_id
    client._manager.update_backoff(node)  # as after a failed connection: 50 ms, +-20%
    try:
        assert 30 <= client.connection_delay(node) <= 60
    finally:
        client._manager._backoff.pop(node, None)


def test_asking_for_metadata_while_an_update_is_pending_wakes_nothing(producer) -> None:
    metadata = producer._metadata
    manager = producer._sender._client._manager
    # The refresh held back (as after a failed one: 50 ms, +-20%), so the update stays pending
    # between the two asks.
    manager.update_backoff("metadata")
    woken = []
    notify = metadata._wakeup.notify
    metadata._wakeup.notify = lambda: (woken.append(1), notify())
    try:
        first = metadata.request_update()
        second = metadata.request_update()
        third = metadata.request_update()
        assert not first.is_done, "the update was not held back"
        assert second is first and third is first
        assert len(woken) == 1
    finally:
        metadata._wakeup.notify = notify
        manager._backoff.pop("metadata", None)
