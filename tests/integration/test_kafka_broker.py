"""The Kafka the suites use is a real broker: topics, acks=all, consumer groups, committed offsets."""
from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

pytestmark = pytest.mark.kafka

SMALL_MESSAGES = 20
# Above Kafka's 1 MiB default: the broker must have been configured for profile-sized messages.
LARGE_MESSAGE_BYTES = 4 * 1024 * 1024
# An upper bound for reading back what was produced, so a broken broker fails instead of hanging.
CONSUME_DEADLINE_SECONDS = 60


def _consume(consumer: KafkaConsumer, count: int) -> list[bytes]:
    values: list[bytes] = []
    deadline = time.monotonic() + CONSUME_DEADLINE_SECONDS
    while len(values) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=1000).values():
            values.extend(record.value for record in records)
    return values


def test_group_commit_is_stored_by_the_broker(kafka_bootstrap: str) -> None:
    name = "services-" + uuid.uuid4().hex[:12]
    topic, group = name, name + "-group"
    payloads = [f"profile-{i}".encode() for i in range(SMALL_MESSAGES)]
    payloads.append(bytes(range(256)) * (LARGE_MESSAGE_BYTES // 256))

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id=name)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])

        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all",
                                 max_request_size=2 * LARGE_MESSAGE_BYTES)
        try:
            offsets = [producer.send(topic, value=p).get(timeout=30).offset for p in payloads]
        finally:
            producer.close()
        assert offsets == list(range(len(payloads)))

        consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group,
                                 enable_auto_commit=False, auto_offset_reset="earliest")
        try:
            consumer.subscribe([topic])
            received = _consume(consumer, len(payloads))
            assert received == payloads
            consumer.commit()
            assert consumer.committed(TopicPartition(topic, 0)) == len(payloads)
        finally:
            consumer.close()

        # Asked again on a connection of its own: the offset lives in the broker, not the client.
        stored = admin.list_group_offsets({group: [TopicPartition(topic, 0)]})
        assert stored[group][TopicPartition(topic, 0)].offset == len(payloads)
    finally:
        admin.delete_topics([topic])
        admin.close()


def test_drop_topics_deletes_what_a_test_made_and_ignores_the_rest(kafka_bootstrap: str) -> None:
    from tests.services import drop_topics

    name = "services-" + uuid.uuid4().hex[:12]
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id=name)
    try:
        admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
        # The broker answers the create before every metadata view lists the topic.
        deadline = time.monotonic() + 30
        while name not in admin.list_topics():
            assert time.monotonic() < deadline, f"{name} never listed"
            time.sleep(0.1)
        drop_topics(kafka_bootstrap, name, name + "-never-made")
        deadline = time.monotonic() + 30
        while name in admin.list_topics():
            assert time.monotonic() < deadline, f"{name} still listed"
            time.sleep(0.2)
    finally:
        admin.close()
