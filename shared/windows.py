"""Series and pre-merged windows: the values the compactor writes and the query planner reads.

A series is every profile of one (service, type, exact label set, sample-type signature): the
profiles that can be merged into one window without changing what a query over them returns.
A window is the merge of one series over one closed hour, or over one day of hourly windows.

Staleness: every insert of raw rows bumps a per-(series, hour) counter, `version`, in the same
transaction. An hourly window records the version it was built from; a daily window records the
sum of the versions of its hours (versions only grow, so any change to any hour changes the sum).
A window is clean iff what it was built from equals what is there now.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import NamedTuple


from shared.model import Labels, ProfileType

HOUR = 3600
DAY = 24 * HOUR


def series_id(service: str, ptype: ProfileType, labels: Labels, signature: str) -> str:
    """A stable key of the series: the same profile always lands in the same series, on any node.

    Labels are taken as a set (sorted by key, then value), so the arrival order of duplicate keys
    does not split a series.
    """
    pairs = sorted((lb.key, lb.value) for lb in labels)
    raw = json.dumps([service, ptype.value, pairs, signature], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def floor_to(seconds: int, span: int) -> int:
    return seconds - seconds % span


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


@dataclass(frozen=True)
class Series:
    id: str
    service: str
    type: ProfileType
    labels: Labels
    signature: str

    @classmethod
    def of(cls, service: str, ptype: ProfileType, labels: Labels, signature: str) -> Series:
        canonical = Labels.of((lb.key, lb.value) for lb in sorted(labels))
        return cls(series_id(service, ptype, labels, signature), service, ptype, canonical, signature)


@dataclass(frozen=True)
class Window:
    """One pre-merged profile of a series over [start, start + span - 1] (epoch seconds).

    `blob_key` is None when nothing was left to merge (the hour's profiles are all gone);
    `built_from` is the version (hourly) or sum of versions (daily) it was built from.
    """

    series_id: str
    start: int
    span: int
    blob_key: str | None
    built_from: int
    profiles: int
    size: int
    built_at: int


@dataclass(frozen=True)
class HourState:
    """The counter row of one (series, hour): `pruned` once retention removed its raw profiles."""

    series_id: str
    hour: int
    version: int
    pruned: bool = False


class RawProfile(NamedTuple):
    """A raw profile of one (series, hour), as the compactor reads it: `version` is the hour's
    counter once the profile was stored (None for rows older than that column), so a window built
    from version V holds exactly the profiles of version <= V."""

    id: str
    size: int
    version: int | None


WINDOW_PREFIX = "windows/"  # every window blob lives under it, and nothing else does


def window_key(series: str, span: int, start: int, nonce: str) -> str:
    """A fresh blob key per build: a new window is written beside the old one, never over it."""
    kind = "hour" if span == HOUR else "day"
    return f"{WINDOW_PREFIX}{series}/{kind}-{start}-{nonce}"
