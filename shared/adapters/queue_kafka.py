"""`Queue` on Kafka (kafka-python): the distributed road from the ingest API to the indexers.

Producer: `acks=all`, so a 200 from the ingest API means every in-sync replica has the record;
`publish` waits for that acknowledgement and turns a timeout or a broker error into `Unavailable`
(503 + Retry-After). The record key is the profile id, so records spread over
every partition and every indexer of the group gets a share.

Consumer: one consumer group, auto-commit off. `commit` and `dead_letter` acknowledge deliveries;
per partition the committed offset only ever moves to just past the longest run of acknowledged
offsets from the oldest polled one, so acknowledging a later record never commits past an earlier
record whose work is not durable yet. A message that does not decode is handed out with its
`problem`, for the indexer to dead-letter.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Sequence

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import (
    CommitFailedError,
    KafkaError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
)
from kafka.structs import OffsetAndMetadata, TopicPartition

from shared.errors import Unavailable
from shared.model import IngestRecord
from shared.ports import Delivery
from shared.record import UndecodableRecord, decode, encode
from shared.adapters.settings import KafkaSettings, record_max_bytes

__all__ = ["KafkaQueue", "KafkaSettings", "create_topics", "record_max_bytes"]

REASON_HEADER = "profefe-dead-letter-reason"
SOURCE_HEADER = "profefe-dead-letter-source"

log = logging.getLogger(__name__)


def _sender_backs_off(producer: KafkaProducer) -> None:
    """Two faults of kafka-python 3's producer while a broker is away, each of which made its
    sender spin: the ingest-api spent a whole core for as long as Kafka was down and ~20 s after
    (the fault suite's Kafka outage). The sender takes the reconnect backoff, which
    the client gives in seconds, for milliseconds; and it asks for a metadata update on every
    turn while a partition has no known leader, each ask waking its own poll at once. Here the
    client of this producer (its sender's alone) answers in milliseconds, and an ask while one
    is pending changes nothing, as in Kafka's Java client."""
    client: Any = getattr(getattr(producer, "_sender", None), "_client", None)
    delay_seconds = getattr(client, "connection_delay", None)
    if delay_seconds is not None:
        client.connection_delay = lambda node_id: delay_seconds(node_id) * 1000
    metadata: Any = getattr(producer, "_metadata", None)
    ask = getattr(metadata, "request_update", None)
    if ask is None or not hasattr(metadata, "_need_update") or not hasattr(metadata, "_future"):
        return

    def request_update():
        pending = metadata._future
        if metadata._need_update and pending is not None and not pending.is_done:
            return pending
        return ask()

    metadata.request_update = request_update


def _fetches_wait(consumer: KafkaConsumer, max_wait_ms: int) -> None:
    """The broker-side wait of the consumer's next fetches. kafka-python reads it from its
    fetcher's config as it builds each fetch, and offers no other way to change it."""
    config = getattr(getattr(consumer, "_fetcher", None), "config", None)
    if isinstance(config, dict) and "fetch_max_wait_ms" in config:
        config["fetch_max_wait_ms"] = max_wait_ms


@dataclass(frozen=True)
class _Token:
    partition: TopicPartition
    offset: int
    key: bytes | None
    value: bytes


class KafkaQueue:
    """`Queue` over one topic; the producer and the consumer are made on first use."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self._publish_timeout = settings.publish_timeout
        self._lock = threading.Lock()
        self._producer: KafkaProducer | None = None
        self._consumer: KafkaConsumer | None = None
        # partition -> {polled offset: acknowledged?}
        self._pending: dict[TopicPartition, dict[int, bool]] = {}
        self._closed = False

    # producing ---------------------------------------------------------------------------

    def publish(self, record: IngestRecord, timeout: float) -> None:
        self._send(self.settings.topic, record.id.encode(), encode(record), None, timeout)

    def _send(self, topic: str, key: bytes | None, value: bytes, headers, timeout: float) -> None:
        producer = self._producer_or_unavailable()
        try:
            future = producer.send(topic, key=key, value=value, headers=headers)
            future.get(timeout=timeout)
        except KafkaTimeoutError as exc:
            raise Unavailable(f"Kafka did not acknowledge the record within {timeout:g}s ({exc})",
                              retry_after=5) from exc
        except KafkaError as exc:
            raise Unavailable(f"Kafka refused the record: {exc}", retry_after=5) from exc

    def _producer_or_unavailable(self) -> KafkaProducer:
        with self._lock:
            self._check_open()
            if self._producer is None:
                s = self.settings
                # Give up on a record about when `publish` stops waiting for it, so a record
                # answered with 503 is rarely written later as well.
                give_up_ms = max(2000, int(self._publish_timeout * 1000))
                try:
                    self._producer = KafkaProducer(
                        bootstrap_servers=s.servers,
                        client_id=f"{s.client_id}-producer",
                        acks="all",
                        # Off on purpose: after records expire while the broker is away,
                        # kafka-python's idempotent producer stops delivering for good once the
                        # broker is back (the fault suite's Kafka outage shows it). A retry may then
                        # write a record twice, which is harmless: the id is in the record and
                        # indexing is keyed by it.
                        enable_idempotence=False,
                        # A missing topic is a deployment error (run `profefe migrate`), not one to
                        # paper over with a broker-default topic of one partition and 1 MiB messages.
                        allow_auto_create_topics=False,
                        max_request_size=s.max_message_bytes,
                        linger_ms=2,  # concurrent uploads share one request
                        reconnect_backoff_max_ms=s.reconnect_backoff_max_ms,
                        max_block_ms=give_up_ms,
                        # The first publish connects: without this, an unreachable broker held
                        # it for kafka-python's 30 s, whatever the publish timeout.
                        bootstrap_timeout_ms=give_up_ms,
                        request_timeout_ms=give_up_ms,
                        delivery_timeout_ms=give_up_ms + 2,  # Kafka wants >= linger + request timeout
                    )
                except KafkaError as exc:
                    raise Unavailable(f"Kafka at {s.bootstrap} does not answer: {exc}") from exc
                _sender_backs_off(self._producer)
            return self._producer

    # consuming ---------------------------------------------------------------------------

    def poll(self, max_records: int, timeout: float) -> list[Delivery]:
        consumer = self._consumer_or_unavailable()
        try:
            batches = consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        except KafkaError as exc:
            raise Unavailable(f"Kafka poll failed: {exc}") from exc
        _fetches_wait(consumer, self.settings.fetch_max_wait_ms if batches else self.settings.idle_fetch_max_wait_ms)
        out = []
        with self._lock:
            for tp, messages in batches.items():
                pending = self._pending.setdefault(tp, {})
                for m in messages:
                    pending[m.offset] = False
                    token = _Token(tp, m.offset, m.key, m.value)
                    try:
                        out.append(Delivery(decode(m.value or b""), token))
                    except UndecodableRecord as exc:
                        out.append(Delivery(None, token, problem=str(exc)))
        return out

    def commit(self, deliveries: Sequence[Delivery]) -> None:
        self._acknowledge([d.token for d in deliveries])

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        t: _Token = delivery.token
        headers = [
            (REASON_HEADER, reason.encode("utf-8", "replace")[:4096]),
            (SOURCE_HEADER, f"{t.partition.topic}/{t.partition.partition}/{t.offset}".encode()),
        ]
        self._send(self.settings.dead_letter_topic, t.key, t.value, headers, self._publish_timeout)
        self._acknowledge([t])

    def _acknowledge(self, tokens: Sequence[_Token]) -> None:
        offsets = {}
        with self._lock:
            for t in tokens:
                pending = self._pending.get(t.partition)
                if pending is not None and t.offset in pending:
                    pending[t.offset] = True
            for tp in {t.partition for t in tokens}:
                upto = _acknowledged_run(self._pending.get(tp, {}))
                if upto is not None:
                    offsets[tp] = OffsetAndMetadata(upto + 1, "", -1)
            consumer = self._consumer
        if not offsets or consumer is None:
            return
        try:
            # Without a timeout kafka-python retries a commit forever while the coordinator
            # does not answer.
            consumer.commit(offsets, timeout_ms=int(self.settings.request_timeout * 1000))
        except CommitFailedError as exc:
            # The group rebalanced: another member re-reads from the last commit. The work is
            # durable and idempotent, so that redelivery is harmless.
            log.warning("offset commit refused after a rebalance, records will be redelivered: %s", exc)
            return
        except KafkaError as exc:
            raise Unavailable(f"Kafka offset commit failed: {exc}") from exc
        with self._lock:
            for tp, om in offsets.items():
                pending = self._pending.get(tp, {})
                for offset in [o for o in pending if o < om.offset]:
                    del pending[offset]

    def _consumer_or_unavailable(self) -> KafkaConsumer:
        with self._lock:
            self._check_open()
            if self._consumer is None:
                s = self.settings
                try:
                    consumer = KafkaConsumer(
                        bootstrap_servers=s.servers,
                        client_id=f"{s.client_id}-consumer",
                        group_id=s.group,
                        enable_auto_commit=False,
                        auto_offset_reset="earliest",
                        allow_auto_create_topics=False,
                        max_partition_fetch_bytes=s.max_message_bytes,
                        fetch_max_bytes=max(52_428_800, s.max_message_bytes),
                        fetch_max_wait_ms=s.fetch_max_wait_ms,
                        reconnect_backoff_max_ms=s.reconnect_backoff_max_ms,
                        request_timeout_ms=int(s.request_timeout * 1000),
                        bootstrap_timeout_ms=int(s.request_timeout * 1000),
                        session_timeout_ms=int(s.session_timeout * 1000),
                        # Kafka's rule: at most a third of the session, so two may be lost.
                        heartbeat_interval_ms=min(3000, int(s.session_timeout * 1000 / 3)),
                    )
                    # The topic's partitions in the client's metadata before it joins: a consumer
                    # that led a join without them assigned itself none, and kafka-python did not
                    # always notice when they arrived (an indexer idle for good beside a backlog).
                    try:
                        consumer.partitions_for_topic(s.topic)
                    except BaseException:
                        consumer.close()
                        raise
                except KafkaError as exc:
                    raise Unavailable(f"Kafka at {s.bootstrap} does not answer: {exc}") from exc
                consumer.subscribe([s.topic], listener=_ForgetRevoked(self))
                self._consumer = consumer
            return self._consumer

    def _forget(self, partitions) -> None:
        with self._lock:
            for tp in partitions:
                self._pending.pop(tp, None)

    def lag(self) -> dict[int, int]:
        """Records behind the end of each assigned partition (end offset - position), for
        metrics; empty before the first poll. Call it from the polling thread: the consumer is
        not thread-safe."""
        with self._lock:
            consumer = self._consumer
        if consumer is None:
            return {}
        try:
            assigned = list(consumer.assignment())
            if not assigned:
                return {}
            ends = consumer.end_offsets(assigned, timeout_ms=5000)
            positions = {tp: consumer.position(tp, timeout_ms=5000) for tp in assigned}
        except KafkaError as exc:
            raise Unavailable(f"Kafka did not report the consumer's lag: {exc}") from exc
        return {tp.partition: max(0, ends[tp] - pos) for tp, pos in positions.items()
                if pos is not None and tp in ends}

    # both --------------------------------------------------------------------------------

    def ping(self) -> None:
        """Return when the brokers answer a metadata request; `Unavailable` otherwise."""
        producer = self._producer_or_unavailable()
        try:
            producer.partitions_for(self.settings.topic)
        except KafkaError as exc:
            raise Unavailable(f"Kafka at {self.settings.bootstrap} does not answer: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            consumer, producer = self._consumer, self._producer
            self._pending.clear()
        if consumer is not None:
            consumer.close(autocommit=False)
        if producer is not None:
            producer.close(timeout=self._publish_timeout)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("Kafka queue client is closed")


class _ForgetRevoked(ConsumerRebalanceListener):
    """Revoked partitions are re-read by their next owner from the last commit: forget them."""

    def __init__(self, queue: KafkaQueue) -> None:
        self._queue = queue

    def on_partitions_revoked(self, revoked) -> None:
        self._queue._forget(revoked)

    def on_partitions_assigned(self, assigned) -> None:
        self._queue._forget(assigned)
        log.info("assigned partitions %s", ",".join(str(tp.partition) for tp in sorted(assigned)) or "none")


def _acknowledged_run(pending: dict[int, bool]) -> int | None:
    """The last offset of the run of acknowledged offsets starting at the oldest pending one."""
    last = None
    for offset in sorted(pending):
        if not pending[offset]:
            break
        last = offset
    return last


def create_topics(settings: KafkaSettings, *, partitions: int = 6, replication: int = 1) -> list[str]:
    """Create the topic and its dead-letter topic, sized for the largest record; existing ones
    are left as they are. Returns the names it created."""
    timeout = settings.request_timeout
    config = {"max.message.bytes": str(settings.max_message_bytes)}
    wanted = [
        NewTopic(settings.topic, partitions, replication, topic_configs=config),
        NewTopic(settings.dead_letter_topic, 1, replication, topic_configs=config),
    ]
    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.servers, client_id=f"{settings.client_id}-admin",
                                 request_timeout_ms=int(timeout * 1000), bootstrap_timeout_ms=int(timeout * 1000))
    except KafkaError as exc:
        raise Unavailable(f"Kafka at {settings.bootstrap} does not answer: {exc}") from exc
    created = []
    try:
        existing = set(admin.list_topics())
        for topic in wanted:
            if topic.name in existing:
                continue
            try:
                admin.create_topics([topic], timeout_ms=int(timeout * 1000))
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
    except KafkaError as exc:
        raise Unavailable(f"could not create Kafka topics: {exc}") from exc
    finally:
        admin.close()
    return created
