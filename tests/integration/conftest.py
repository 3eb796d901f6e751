"""Fixtures of the integration tests."""
from __future__ import annotations

import uuid

import pytest

from shared.adapters.queue_kafka import KafkaQueue, KafkaSettings, create_topics
from tests.services import drop_topics


@pytest.fixture
def kafka_queue(kafka_bootstrap: str):
    """A KafkaQueue on a topic (one partition) and group of its own, dropped after the test."""
    name = "it-" + uuid.uuid4().hex[:10]
    settings = KafkaSettings(bootstrap=kafka_bootstrap, topic=name, dead_letter_topic=f"{name}-dead", group=name)
    create_topics(settings, partitions=1)
    queue = KafkaQueue(settings)
    try:
        yield queue
    finally:
        queue.close()
        drop_topics(kafka_bootstrap, settings.topic, settings.dead_letter_topic)
