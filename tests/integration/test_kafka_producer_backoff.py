"""KafkaQueue's producer against the real broker keeps the two mends of kafka-python 3's sender
(shared/adapters/queue_kafka.py: `_sender_backs_off`), without which an ingest-api spent a whole
core for as long as Kafka was away. These fail when a kafka-python release changes what the
mends reach into, which is when they must be looked at again (the fault suite's Kafka outage
shows the CPU they save)."""
from __future__ import annotations

import pytest

from tests.contract.test_queue import record

pytestmark = pytest.mark.kafka


@pytest.fixture
def producer(kafka_queue):
    kafka_queue.publish(record(), timeout=30)
    assert kafka_queue._producer is not None
    return kafka_queue._producer


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
