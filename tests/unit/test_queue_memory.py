"""What only the in-memory queue promises: dead letters kept for inspection, backpressure."""
from __future__ import annotations

import pytest

from shared.adapters.queue_memory import MemoryQueue, MemoryTopic
from shared.errors import Unavailable
from tests.contract.test_queue import record


def test_dead_letters_keep_the_reason():
    topic = MemoryTopic()
    q = MemoryQueue(topic)
    r = record()
    q.publish(r, timeout=1)
    [d] = q.poll(1, timeout=1)
    q.dead_letter(d, "why")
    assert topic.dead_letters == [(r, "why")]


def test_a_full_topic_refuses_after_the_timeout():
    q = MemoryQueue(MemoryTopic(max_records=1))
    q.publish(record(), timeout=1)
    with pytest.raises(Unavailable, match="queue is full"):
        q.publish(record(), timeout=0.01)


def test_a_closed_client_refuses_work():
    q = MemoryQueue()
    q.close()
    with pytest.raises(RuntimeError):
        q.poll(1, timeout=0)
