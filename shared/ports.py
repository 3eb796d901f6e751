"""The ports every role talks through; each has a local adapter and a production one.

Adapters raise the domain errors of `shared.errors`: `NotFound` for a missing key or id,
`Unavailable` when the backing service does not answer (the API turns it into 503 + Retry-After).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

from shared.model import IngestRecord, ProfileMeta, Query


@runtime_checkable
class BlobStore(Protocol):
    """Profile bytes by key (`shared.model.blob_key`). Writes are whole and atomic."""

    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, replacing what was there (so a redelivery is harmless)."""

    def get(self, key: str) -> bytes:
        """The bytes under `key`; `NotFound` when there are none."""

    def delete(self, key: str) -> None:
        """Remove `key`; removing a missing key is not an error."""

    def ping(self) -> None:
        """Return when the store answers; `Unavailable` otherwise."""


@runtime_checkable
class MetaStore(Protocol):
    """The searchable metadata of stored profiles."""

    def put(self, metas: Sequence[ProfileMeta]) -> None:
        """Insert all rows in one transaction; a row whose id exists already is left as it is."""

    def find(self, query: Query) -> list[ProfileMeta]:
        """Matches ascending by created_at, ties by id; with a limit, the newest `limit` of them."""

    def get_many(self, ids: Sequence[str]) -> list[ProfileMeta]:
        """The rows for these ids that exist, in no particular order."""

    def services(self) -> list[str]:
        """Every service with at least one profile, sorted."""

    def ping(self) -> None:
        """Return when the store answers; `Unavailable` otherwise."""


@dataclass(frozen=True)
class Delivery:
    """One record handed out by `Queue.poll`; `token` is the adapter's handle to acknowledge it.

    A message that could not even be decoded arrives with `record` None and `problem` saying why,
    so the consumer can dead-letter it instead of stalling on it.
    """

    record: IngestRecord | None
    token: Any
    problem: str = ""


@runtime_checkable
class Queue(Protocol):
    """The road from the ingest API to the indexer: at-least-once, commit after the work is durable."""

    def publish(self, record: IngestRecord, timeout: float) -> None:
        """Return only once the record is durable; `Unavailable` if that cannot happen in time."""

    def poll(self, max_records: int, timeout: float) -> list[Delivery]:
        """Up to `max_records` deliveries, waiting at most `timeout` seconds for the first one."""

    def commit(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge these deliveries; uncommitted ones are delivered again to a later consumer."""

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Set aside a record that can never be indexed, with the reason, and acknowledge it."""

    def close(self) -> None:
        """Leave: what was polled and not committed goes back to be delivered again."""
