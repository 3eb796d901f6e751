"""The ports every role talks through; each has a local adapter and a production one.

Adapters raise the domain errors of `shared.errors`: `NotFound` for a missing key or id,
`Unavailable` when the backing service does not answer (the API turns it into 503 + Retry-After).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, ContextManager, Iterator, Protocol, Sequence, runtime_checkable

from shared.model import IngestRecord, Labels, ProfileMeta, ProfileType, Query
from shared.windows import HourState, RawProfile, Series, Window


@runtime_checkable
class BlobStore(Protocol):
    """Profile bytes by key (`shared.model.blob_key`). Writes are whole and atomic."""

    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, replacing what was there (so a redelivery is harmless)."""

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """`put` each (key, data), for less than one `put` each (one sync, or uploads at once);
        every one is stored when it returns."""

    def get(self, key: str) -> bytes:
        """The bytes under `key`; `NotFound` when there are none."""

    def get_many(self, keys: Sequence[str]) -> Iterator[bytes]:
        """The bytes under each key, in order, as `get` would give them (`NotFound` where one is
        missing), reading ahead of the caller where the store waits on a network; memory holds a
        bounded number of blobs, never all of them."""

    def delete(self, key: str) -> None:
        """Remove `key`; removing a missing key is not an error."""

    def list(self, prefix: str) -> Iterator[tuple[str, datetime]]:
        """Every key that starts with `prefix` (ending at a `/`), with when it was last written
        (UTC), in no particular order; a prefix with nothing under it yields nothing."""

    def ping(self) -> None:
        """Return when the store answers; `Unavailable` otherwise."""

    def close(self) -> None:
        """Release what the store holds (connections, threads)."""


@runtime_checkable
class MetaStore(Protocol):
    """The searchable metadata of stored profiles."""

    def put(self, metas: Sequence[ProfileMeta]) -> None:
        """Insert all rows in one transaction; a row whose id exists already is left as it is."""

    def find(self, query: Query) -> list[ProfileMeta]:
        """Matches ascending by created_at, ties by id; with a limit, the newest `limit` of them."""

    def sample_totals(self, query: Query) -> list[tuple[int, str, tuple[int, ...] | None]]:
        """(created_at epoch seconds, signature, totals or None when not recorded) of every match of
        `query` (its limit ignored), ascending: what a timeline needs, without labels or blobs."""

    def signatures(self, query: Query) -> list[tuple[str, str]]:
        """The distinct (type, signature) of the matches of `query` whatever its type, sorted: the
        sample and period types each type holds, as Pyroscope's profile types list them."""

    def label_pairs(self, query: Query, limit: int, key: str | None = None) -> list[tuple[str, str]]:
        """The distinct (key, value) label pairs of the matches of `query`, sorted, at most `limit`;
        only those of `key` when given."""

    def get_many(self, ids: Sequence[str]) -> list[ProfileMeta]:
        """The rows for these ids that exist, in no particular order."""

    def services(self) -> list[str]:
        """Every service with at least one profile or pre-merged window, sorted."""

    def ping(self) -> None:
        """Return when the store answers; `Unavailable` otherwise."""

    def close(self) -> None:
        """Release the connections."""


@dataclass(frozen=True)
class Delivery:
    """One record handed out by `Queue.poll`; `token` is the adapter's handle to acknowledge it.

    A message that could not even be decoded arrives with `record` None and `problem` saying why,
    so the consumer can dead-letter it instead of stalling on it.
    """

    record: IngestRecord | None
    token: Any
    problem: str = ""


# What the ingest API hands an accepted upload to: it returns once the record is durable (the
# queue acknowledged it, or the embedded collector stored it), or raises `Unavailable`.
Publish = Callable[[IngestRecord], None]


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

    def lag(self) -> dict[int, int]:
        """Records not yet consumed, by partition, for metrics; empty when not known yet. Called
        from the polling thread."""

    def ping(self) -> None:
        """Return when the broker answers; `Unavailable` otherwise."""

    def close(self) -> None:
        """Leave: what was polled and not committed goes back to be delivered again."""


class HourClaim(Protocol):
    """A claimed hour: its counter (`state`), its current window, and `save` to switch it."""

    state: HourState
    window: Window | None
    replaced: str | None  # after `save`: the blob key of the window it replaced, for the caller to delete

    def save(self, window: Window, drop_raw: Sequence[str] = ()) -> None:
        """Switch to `window` and delete the `drop_raw` rows in one transaction."""


class DayClaim(Protocol):
    """A claimed day: `built_from` (sum of its counters), whether all its hours are `clean`, its
    hourly windows in time order, its current daily window, and `save`."""

    built_from: int
    clean: bool
    hours: list[Window]
    window: Window | None
    replaced: str | None

    def save(self, window: Window) -> None:
        """Switch to `window`."""


@runtime_checkable
class WindowStore(Protocol):
    """Pre-merged windows (`shared.windows`) and the per-(series, hour) counters they are checked
    against. The counters are bumped by `MetaStore.put`, never here."""

    def series_of(self, service: str, ptype: ProfileType, labels: Labels, *,
                  active_in: tuple[int, int] | None = None) -> list[Series]:
        """The series of (service, type) whose labels include every pair of `labels`; with
        `active_in`, only those with a counter for an hour starting in [start, end]."""

    def hour_states(self, series_ids: Sequence[str], start: int, end: int) -> list[HourState]:
        """The counters of these series for hours starting in [start, end] (epoch seconds)."""

    def windows(self, series_ids: Sequence[str], span: int, start: int, end: int) -> list[Window]:
        """The windows of this span of these series starting in [start, end], clean or not."""

    def pending_hours(self, closed_before: int, not_before: int, limit: int) -> list[HourState]:
        """Closed hours whose hourly window is missing or stale, oldest first."""

    def pending_days(self, closed_before: int, not_before: int, limit: int) -> list[tuple[str, int]]:
        """Closed (series, day) whose hours are all clean and whose daily window is missing or stale."""

    def series_by_id(self, series_id: str) -> Series | None:
        """One series, or None."""

    def raw_in(self, series_id: str, start: int, end: int) -> list[RawProfile]:
        """The series' raw profiles created in [start, end] (id, size, version), oldest first."""

    def claim_hour(self, series_id: str, hour: int) -> ContextManager[HourClaim | None]:
        """An `HourClaim` held until the block ends, or None when another compactor has it."""

    def claim_day(self, series_id: str, day: int) -> ContextManager[DayClaim | None]:
        """A `DayClaim` held until the block ends, or None when another compactor has it."""

    def prune_raw(self, before: int, windows_before: int, *, service: str | None = None,
                  other_than: Sequence[str] = (), limit: int = 1000) -> list[str]:
        """Delete the raw rows of the oldest day of whole compacted hours older than `before`, and
        up to `limit` traces; their ids (the caller deletes the blobs), none when nothing is left."""

    def drop_windows(self, before: int, limit: int = 1000) -> list[str]:
        """Delete windows ending before `before`; their blob keys (the caller deletes the blobs)."""

    def referenced(self, keys: Sequence[str]) -> set[str]:
        """The keys among `keys` that a window row points to (the others are orphans)."""

    def ping(self) -> None:
        """Return when the store answers; `Unavailable` otherwise."""

    def close(self) -> None:
        """Release the connections."""
