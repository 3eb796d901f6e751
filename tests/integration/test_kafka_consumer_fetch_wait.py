"""KafkaQueue's consumer against the real broker: the broker holds its fetches long only while
the consumer is idle (shared/adapters/queue_kafka.py: `_fetches_wait`). This fails when a
kafka-python release moves what that reaches into; an idle indexer then asks 20 times a second
again, or, were the long wait left on, records behind buffered ones wait for it."""
from __future__ import annotations

import pytest

from shared.adapters.queue_kafka import KafkaQueue
from tests.contract.test_queue import drain, record

pytestmark = pytest.mark.kafka


def fetch_wait(q: KafkaQueue) -> int:
    return q._consumer._fetcher.config["fetch_max_wait_ms"]


def test_fetches_wait_long_only_after_a_poll_found_nothing(kafka_queue) -> None:
    queue = kafka_queue
    s = queue.settings
    assert s.idle_fetch_max_wait_ms > s.fetch_max_wait_ms
    queue.poll(max_records=10, timeout=0.5)
    assert fetch_wait(queue) == s.idle_fetch_max_wait_ms
    queue.publish(record(), timeout=30)
    assert len(drain(queue, 1, timeout=30)) == 1
    assert fetch_wait(queue) == s.fetch_max_wait_ms

