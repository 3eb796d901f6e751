"""The domain: profile types, labels, ids, times and the records that flow between the roles.

Everything here is a frozen value plus the parsing that builds it from profefe's query
parameters; parse errors are `BadRequest` with the message the API answers.
"""
from __future__ import annotations

import base64
import enum
import hashlib
import itertools
import os
import re
import secrets
import socket
import struct
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Iterable

from shared.errors import BadRequest

# Most labels one profile carries, and one find matches on, unless configured otherwise: a find's
# labels become one IN-subquery each, and PostgreSQL's planning time grows steeply with them.
MAX_LABELS = 64
# Largest upload accepted, as sent, unless configured otherwise; Kafka's messages are sized from it.
MAX_BODY_BYTES = 8 << 20


class ProfileType(enum.Enum):
    CPU = "cpu"
    HEAP = "heap"
    BLOCK = "block"
    MUTEX = "mutex"
    GOROUTINE = "goroutine"
    THREADCREATE = "threadcreate"
    WALL = "wall"  # wall-clock time, on CPU or not (Pyroscope's agents send it; Go's runtime has none)
    TRACE = "trace"
    OTHER = "other"

    @classmethod
    def parse(cls, raw: str | None) -> ProfileType:
        """profefe's spelling: trimmed, case-sensitive."""
        text = (raw or "").strip()
        if not text:
            raise BadRequest('missing "type"')
        try:
            return cls(text)
        except ValueError:
            known = ", ".join(t.value for t in cls)
            raise BadRequest(f"unknown profile type {_go_quote(text)} (want one of {known})") from None

    @property
    def is_pprof(self) -> bool:
        return self is not ProfileType.TRACE

    def __str__(self) -> str:
        return self.value


# Sample type names each Go runtime profile carries. An upload whose sample types all belong to
# another type's set (and not to its own) is refused: one mislabelled profile would otherwise
# break every later merge of the declared type.
GO_SAMPLE_TYPES: dict[ProfileType, frozenset[str]] = {
    ProfileType.CPU: frozenset({"samples", "cpu"}),
    ProfileType.HEAP: frozenset({"alloc_objects", "alloc_space", "inuse_objects", "inuse_space"}),
    ProfileType.BLOCK: frozenset({"contentions", "delay"}),
    ProfileType.MUTEX: frozenset({"contentions", "delay"}),
    ProfileType.GOROUTINE: frozenset({"goroutine"}),
    ProfileType.THREADCREATE: frozenset({"threadcreate"}),
}


def contradicting_type(declared: ProfileType, sample_type_names: Iterable[str]) -> ProfileType | None:
    """The known type whose content this is, when it is plainly not `declared`; else None.

    Unfamiliar sample types are never a contradiction, and `other` accepts anything.
    """
    names = frozenset(sample_type_names)
    own = GO_SAMPLE_TYPES.get(declared)
    if own is None or not names or names <= own:
        return None
    for known, expected in GO_SAMPLE_TYPES.items():
        if known is not declared and names <= expected:
            return known
    return None


# Labels ------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Label:
    key: str
    value: str


@dataclass(frozen=True)
class Labels:
    """Ordered by key (stable: duplicates keep their order of arrival), duplicates kept, as profefe."""

    items: tuple[Label, ...] = ()

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> Labels:
        return cls(tuple(sorted((Label(k, v) for k, v in pairs), key=lambda lb: lb.key)))

    @classmethod
    def parse(cls, raw: str | None) -> Labels:
        """Parse profefe's `k=v,k=v` (the query string already decoded once).

        Split on `,`, then on the first `=`; trim; skip empty keys; each key and value is
        decoded once more the way Go's `url.QueryUnescape` does (`%XX`, and `+` is a space),
        because profefe's agent encodes label values before building the query string.
        """
        pairs = []
        for chunk in (raw or "").split(","):
            key, _, value = chunk.partition("=")
            try:
                key = query_unescape(key.strip())
                value = query_unescape(value.strip())
            except ValueError as exc:
                raise BadRequest(f'bad "labels" {_go_quote(raw or "")}: {exc}') from None
            if key:
                pairs.append((key, value))
        return cls.of(pairs)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def includes(self, wanted: Labels) -> bool:
        """True when every pair of `wanted` is one of ours (an AND of exact pairs)."""
        mine = set(self.items)
        return all(lb in mine for lb in wanted.items)

    def __str__(self) -> str:
        return ",".join(f"{lb.key}={lb.value}" for lb in self.items)


def has_control(text: str) -> bool:
    """A control character (Unicode Cc): nothing stored holds one, and PostgreSQL refuses a NUL."""
    return any(unicodedata.category(ch) == "Cc" for ch in text)


_HEX = "0123456789abcdefABCDEF"


def query_unescape(s: str) -> str:
    """Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte, a bad escape an error."""
    if "%" not in s and "+" not in s:
        return s
    out = bytearray()
    i = 0
    raw = s.encode("utf-8")
    while i < len(raw):
        c = raw[i]
        if c == 0x25:  # %
            esc = raw[i:i + 3]
            if len(esc) < 3 or chr(esc[1]) not in _HEX or chr(esc[2]) not in _HEX:
                raise ValueError(f"invalid URL escape {_go_quote(esc.decode('utf-8', 'replace'))}")
            out.append(int(esc[1:3], 16))
            i += 3
        elif c == 0x2B:  # +
            out.append(0x20)
            i += 1
        else:
            out.append(c)
            i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not valid UTF-8 once decoded") from None


_QUOTED_CHARS = 256  # client input echoed in an error is cut here: a 1 MiB parameter is not sent back


def _go_quote(s: str) -> str:
    clipped = s[:_QUOTED_CHARS]
    quoted = '"' + clipped.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return quoted + "..." if len(s) > _QUOTED_CHARS else quoted


# Times -------------------------------------------------------------------------------------

_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})?"
)


def parse_time(name: str, raw: str) -> datetime:
    """`YYYY-MM-DDTHH:MM:SS[.frac]` as UTC, or RFC 3339 with a zone; truncated to the second."""
    m = _TIME.fullmatch(raw.strip())
    try:
        if m is None:
            raise ValueError
        year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
        zone = m.group(8)
        tz = timezone.utc
        if zone and zone not in "Zz":
            sign = 1 if zone[0] == "+" else -1
            tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        moment = datetime(year, month, day, hour, minute, second, tzinfo=tz)
        return moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise BadRequest(
            f'bad "{name}" {_go_quote(raw)}: time in unsupported format, '
            "want YYYY-MM-DDTHH:MM:SS (UTC) or RFC 3339"
        ) from None


def utc_seconds(moment: datetime) -> datetime:
    """A UTC datetime truncated to the second: the precision profiles are stored and compared at."""
    return moment.astimezone(timezone.utc).replace(microsecond=0)


def from_unix(seconds: float) -> datetime:
    return utc_seconds(datetime.fromtimestamp(int(seconds), tz=timezone.utc))


def format_time(moment: datetime) -> str:
    return utc_seconds(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


# Ids ---------------------------------------------------------------------------------------

ID_PATTERN = re.compile(r"[0-9a-v]{20}")
_counter = itertools.count(secrets.randbelow(1 << 24))
_counter_lock = threading.Lock()


@cache
def _machine_id() -> bytes:
    return hashlib.md5(socket.gethostname().encode("utf-8", "replace")).digest()[:3]


def new_id(now: float | None = None) -> str:
    """An xid-style id (as profefe's rs/xid): 4-byte seconds, 3-byte machine, 2-byte pid,
    3-byte counter, in lowercase base32hex: 20 characters of `0-9a-v`, sortable by time, URL-safe."""
    seconds = int(time.time() if now is None else now) & 0xFFFFFFFF
    with _counter_lock:
        count = next(_counter) & 0xFFFFFF
    raw = (
        struct.pack(">I", seconds)
        + _machine_id()
        + struct.pack(">H", os.getpid() & 0xFFFF)
        + count.to_bytes(3, "big")
    )
    return base64.b32hexencode(raw).decode("ascii").rstrip("=").lower()


def content_id(at: float | None, *parts: bytes) -> str:
    """An id of `new_id`'s form, 4 bytes of seconds then 8 of a digest of `parts`: the same content
    is the same id, so an upload a client sends again is stored once. `at` is the content's own
    time; without one the seconds are digest bytes too, for an arrival time would differ between
    a try and its retry."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(struct.pack(">Q", len(part)))
        digest.update(part)
    hashed = digest.digest()
    head = struct.pack(">I", int(at) & 0xFFFFFFFF) if at is not None else hashed[8:12]
    return base64.b32hexencode(head + hashed[:8]).decode("ascii").rstrip("=").lower()


def is_id(s: str) -> bool:
    return ID_PATTERN.fullmatch(s) is not None


def id_time(profile_id: str) -> datetime:
    """When the id was made (its first four bytes)."""
    raw = base64.b32hexdecode(profile_id.upper() + "====")
    return from_unix(struct.unpack(">I", raw[:4])[0])


# Records -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileMeta:
    """What the metadata store keeps about one stored profile."""

    id: str
    service: str
    type: ProfileType
    labels: Labels
    created_at: datetime  # UTC, second precision
    received_at: datetime  # UTC, second precision
    size: int  # bytes of the stored blob
    signature: str = ""  # pprof.signature: period and sample types; empty for trace
    # The sum of each sample value column (pprof.totals), kept so a timeline never reads blobs;
    # empty for traces and for profiles stored before totals were recorded.
    totals: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "created_at", utc_seconds(self.created_at))
        object.__setattr__(self, "received_at", utc_seconds(self.received_at))

    @classmethod
    def stored(cls, id: str, service: str, type: ProfileType, labels: Labels, created_at: datetime,
               received_at: datetime, size: int, signature: str, totals: tuple[int, ...]) -> ProfileMeta:
        """A ProfileMeta of values already normalised (both datetimes UTC whole seconds), as a
        store reads them back: a find builds hundreds per call, and `__init__` with its
        `__post_init__` is most of what that costs in Python."""
        new = object.__new__(cls)
        new.__dict__.update(id=id, service=service, type=type, labels=labels, created_at=created_at,
                            received_at=received_at, size=size, signature=signature, totals=totals)
        return new


@dataclass(frozen=True)
class IngestRecord:
    """One accepted upload on its way from the ingest API to the indexer."""

    id: str
    service: str
    type: ProfileType
    labels: Labels
    created_at: datetime
    received_at: datetime
    body: bytes = field(repr=False)
    signature: str = ""
    totals: tuple[int, ...] = ()

    def meta(self) -> ProfileMeta:
        return ProfileMeta(
            id=self.id,
            service=self.service,
            type=self.type,
            labels=self.labels,
            created_at=self.created_at,
            received_at=self.received_at,
            size=len(self.body),
            signature=self.signature,
            totals=self.totals,
        )


def blob_key(profile_id: str) -> str:
    """Where a profile's bytes live in the blob store: derived from the id alone."""
    if not is_id(profile_id):
        raise ValueError(f"bad profile id {_go_quote(profile_id)}")
    return f"profiles/{profile_id}"


@dataclass(frozen=True)
class Query:
    """A find over the metadata: one service, optionally one type, labels as an AND of pairs,
    an inclusive window at second precision, optionally only the newest `limit`."""

    service: str
    type: ProfileType | None
    labels: Labels
    start: datetime
    end: datetime
    limit: int | None = None

    def __post_init__(self) -> None:
        if not self.service:
            raise BadRequest('missing "service"')
        object.__setattr__(self, "start", utc_seconds(self.start))
        object.__setattr__(self, "end", utc_seconds(self.end))
        if self.start > self.end:
            raise BadRequest('"from" is after "to"')
        if self.limit is not None and self.limit < 1:
            raise BadRequest('"limit" must be a positive integer')
