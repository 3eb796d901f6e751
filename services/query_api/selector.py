"""Pyroscope's query language, as far as profefe's store can answer it: label selectors
(`{service_name="shop", region="eu"}`), profile type ids
(`process_cpu:cpu:nanoseconds:cpu:nanoseconds`) and millisecond time ranges, turned into the
service, type, labels and window of a profefe `Query`.

Only equality matchers: the store finds profiles by exact label pairs, so `!=`, `=~` and `!~`
are refused (400, Connect's invalid_argument) rather than answered wrongly.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime

from shared.errors import BadRequest
from shared.model import MAX_LABELS, Labels, ProfileType, has_control
from shared.pyroscope import KEPT_NAME_LABEL, NAME_LABEL, PROFILE_TYPE_LABEL, SERVICE_LABEL, type_of_name
from shared.windows import from_epoch

MAX_SELECTOR_CHARS = 16 << 10
MAX_MATCHERS = 32  # selectors in one LabelNames/LabelValues request
DEFAULT_RANGE_MS = 3_600_000  # a request without a start looks at the hour before its end

_NAME = r'[A-Za-z_][A-Za-z0-9_.]*|"(?:[^"\\]|\\.)*"'
_VALUE = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'
_MATCHER = re.compile(rf"\s*({_NAME})\s*(=~|!~|!=|=)\s*({_VALUE})\s*(,|(?=\}}))", re.S)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "`": "`"}


@dataclass(frozen=True)
class ProfileTypeId:
    """`<name>:<sample type>:<sample unit>:<period type>:<period unit>`."""

    name: str
    sample_type: str
    sample_unit: str
    period_type: str
    period_unit: str

    @classmethod
    def parse(cls, raw: str) -> ProfileTypeId:
        parts = raw.strip().split(":")
        if len(raw) > 1024 or len(parts) != 5 or not parts[0] or not parts[1] or has_control(raw):
            shown = raw if len(raw) <= 128 else raw[:128] + "..."
            raise BadRequest(f"bad profile type {shown!r}: want <name>:<sample type>:<sample unit>:<period type>:<period unit>")
        return cls(*parts)

    @property
    def id(self) -> str:
        return ":".join((self.name, self.sample_type, self.sample_unit, self.period_type, self.period_unit))

    @property
    def type(self) -> ProfileType:
        return type_of_name(self.name)[0]

    def labels(self) -> list[tuple[str, str]]:
        """The labels a profile of this name carries in profefe (`pyroscope.name` for `other`)."""
        kept = type_of_name(self.name)[1]
        return [(KEPT_NAME_LABEL, kept)] if kept else []


@dataclass(frozen=True)
class Selector:
    """What one selector narrows to: a service or any, a type or any, a sample type, labels."""

    service: str | None = None
    type: ProfileType | None = None
    sample_type: str | None = None
    labels: Labels = field(default_factory=Labels)


def _unquote(token: str) -> str:
    if token.startswith("`"):
        return token[1:-1]
    body, out, i = token[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt not in _ESCAPES:
                raise BadRequest(f"bad escape \\{nxt} in the label selector")
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse_selector(raw: str) -> Selector:
    """`{k="v", ...}` (or nothing, which selects everything) -> a Selector; `service_name`,
    `__name__` and `__profile_type__` say the service and the type, every other pair is a label."""
    text = (raw or "").strip()
    if len(text) > MAX_SELECTOR_CHARS:
        raise BadRequest(f"the label selector is over {MAX_SELECTOR_CHARS} characters")
    if not text:
        return Selector()
    if not (text.startswith("{") and text.endswith("}")):
        raise BadRequest('bad label selector: want {name="value", ...}')
    inner, pos, pairs = text[1:-1], 0, []
    padded = inner + "}"  # the last matcher ends at the closing brace
    while inner[pos:].strip():
        m = _MATCHER.match(padded, pos)
        if m is None:
            raise BadRequest(f"bad label selector near {inner[pos:pos + 32].strip()!r}: want name=\"value\"")
        name, op, value = m.group(1), m.group(2), m.group(3)
        if op != "=":
            raise BadRequest(f"only = matchers are supported (the store matches exact label pairs), not {op}")
        pairs.append((_unquote(name) if name.startswith('"') else name, _unquote(value)))
        pos = m.end()
    return _selector(pairs)


def _selector(pairs: list[tuple[str, str]]) -> Selector:
    service: str | None = None
    ptype: ProfileType | None = None
    sample_type: str | None = None
    labels: list[tuple[str, str]] = []

    def once(what: str, old: object, new: object) -> None:
        if old is not None and old != new:
            raise BadRequest(f"{what} is matched twice with different values")

    for key, value in pairs:
        if has_control(key) or has_control(value):
            raise BadRequest("the label selector contains control characters")
        if key == SERVICE_LABEL:
            once(SERVICE_LABEL, service, value)
            service = value.strip()
        elif key == PROFILE_TYPE_LABEL:
            tid = ProfileTypeId.parse(value)
            once("the profile type", ptype, tid.type)
            ptype, sample_type = tid.type, tid.sample_type
            labels += tid.labels()
        elif key == NAME_LABEL:
            named, kept = type_of_name(value)
            once("the profile type", ptype, named)
            ptype = named
            labels += [(KEPT_NAME_LABEL, kept)] if kept else []
        else:
            labels.append((key, value))
    if len(labels) > MAX_LABELS:
        raise BadRequest(f"more than {MAX_LABELS} labels")
    return Selector(service=service or None, type=ptype, sample_type=sample_type, labels=Labels.of(labels))


def selectors(matchers: list[str]) -> list[Selector]:
    """LabelNames'/LabelValues' matchers, any of which may match (none: everything)."""
    if len(matchers) > MAX_MATCHERS:
        raise BadRequest(f"more than {MAX_MATCHERS} matchers")
    return [parse_selector(m) for m in matchers] or [Selector()]


def window(start_ms: int, end_ms: int, now_ms: int | None = None) -> tuple[datetime, datetime]:
    """Pyroscope's [start, end] in milliseconds since the epoch -> profefe's inclusive window at
    the second; no end is now, no start the hour before the end."""
    if start_ms < 0 or end_ms < 0:
        raise BadRequest("start and end are milliseconds since the epoch, not negative")
    end = end_ms or (now_ms if now_ms is not None else int(time.time() * 1000))
    start = start_ms or max(0, end - DEFAULT_RANGE_MS)
    if start > end:
        raise BadRequest("start is after end")
    if end // 1000 > 253402300799:  # 9999-12-31T23:59:59Z, the last second a datetime holds
        raise BadRequest("end is past the year 9999")
    return from_epoch(start // 1000), from_epoch(end // 1000)
