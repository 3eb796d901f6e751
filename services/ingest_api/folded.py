"""Collapsed stacks (`main;work;hot 42`, root first) and Pyroscope's `lines` (one stack a line,
counted once) as a real pprof, so they merge with what other agents send.

A CPU profile in samples becomes Go's CPU shape (`samples/count` and `cpu/nanoseconds`, period
`1e9 / sampleRate` ns), so it merges with Go CPU profiles of the same service; other units keep
one sample type named after the profile.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.errors import BadRequest
from shared.model import ProfileType
from shared.pprof import Profile

DEFAULT_SAMPLE_RATE = 100  # Hz, what Pyroscope assumes when sampleRate is not given
_MAX_SAMPLE_RATE = 1_000_000

# Pyroscope's units -> the pprof unit of the values.
_UNITS = {"samples": "count", "objects": "count", "goroutines": "count", "lock_samples": "count",
          "bytes": "bytes", "lock_nanoseconds": "nanoseconds"}
# Units -> the type when the name has no known kind.
UNIT_TYPES = {"samples": ProfileType.CPU, "objects": ProfileType.HEAP, "bytes": ProfileType.HEAP,
              "goroutines": ProfileType.GOROUTINE}


@dataclass(frozen=True)
class Shape:
    """What the values of a folded upload are."""

    ptype: ProfileType
    kind: str  # the profile name's kind (`cpu`, `inuse_space`, ...) or ""
    units: str
    sample_rate: int

    @classmethod
    def of(cls, kind: str, ptype: ProfileType, units: str | None, sample_rate: str | None) -> Shape:
        units = (units or "samples").strip()
        if units not in _UNITS:
            raise BadRequest(f'unknown "units" {units[:64]!r} (want one of {", ".join(_UNITS)})')
        try:
            rate = int(sample_rate) if sample_rate else DEFAULT_SAMPLE_RATE
        except ValueError:
            raise BadRequest(f'bad "sampleRate" {(sample_rate or "")[:64]!r}: want a positive integer') from None
        if not 0 < rate <= _MAX_SAMPLE_RATE:
            raise BadRequest(f'bad "sampleRate" {rate}: want 1..{_MAX_SAMPLE_RATE}')
        return cls(ptype=ptype, kind=kind, units=units, sample_rate=rate)

    @property
    def timed(self) -> bool:
        """Samples of a clock: each stands for one period of CPU or wall time."""
        return self.units == "samples" and self.ptype in (ProfileType.CPU, ProfileType.WALL)


def parse_stacks(body: bytes, *, lines: bool) -> dict[tuple[str, ...], int]:
    """Stack (root first) -> count. A line that is not `frame;frame count` (or, for `lines`, a
    stack) is refused with its number, so a garbled upload stores nothing."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the folded profile is not UTF-8") from None
    stacks: dict[tuple[str, ...], int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if lines:
            stack, count = line, 1
        else:
            stack, _, raw = line.rpartition(" ")
            if not stack or not raw.isascii() or not raw.isdigit():
                raise BadRequest(f"line {number} of the folded profile is not `frame;frame;... count`: {line[:80]!r}")
            count = int(raw)
        frames = tuple(f for f in stack.split(";") if f)
        if not frames or any(ch < " " for ch in stack):
            raise BadRequest(f"line {number} of the folded profile holds no stack: {line[:80]!r}")
        if count:
            stacks[frames] = stacks.get(frames, 0) + count
    if not stacks:
        raise BadRequest("the folded profile holds no samples")
    return stacks


def to_pprof(stacks: dict[tuple[str, ...], int], shape: Shape, start: datetime | None,
             until: datetime | None) -> Profile:
    """The pprof of these stacks: one function and location per frame name, leaf first."""
    p = Profile()
    strings: dict[str, int] = {"": 0}
    p.string_table.append("")

    def s(text: str) -> int:
        if text not in strings:
            strings[text] = len(p.string_table)
            p.string_table.append(text)
        return strings[text]

    def sample_type(name: str, unit: str) -> None:
        vt = p.sample_type.add()
        vt.type, vt.unit = s(name), s(unit)

    if shape.timed:
        clock = "wall" if shape.ptype is ProfileType.WALL else "cpu"
        period = 1_000_000_000 // shape.sample_rate
        sample_type("samples", "count")
        sample_type(clock, "nanoseconds")
        p.period_type.type, p.period_type.unit = s(clock), s("nanoseconds")
        p.period = period
    else:
        name = shape.kind or shape.units
        sample_type(name, _UNITS[shape.units])
        p.period_type.type, p.period_type.unit = s(name), s(_UNITS[shape.units])
        p.period = 1

    locations: dict[str, int] = {}
    for frames, count in stacks.items():
        sample = p.sample.add()
        for frame in reversed(frames):
            loc = locations.get(frame)
            if loc is None:
                loc = locations[frame] = len(locations) + 1
                fn = p.function.add()
                fn.id, fn.name, fn.system_name = loc, s(frame), s(frame)
                location = p.location.add()
                location.id = loc
                location.line.add().function_id = loc
            sample.location_id.append(loc)
        sample.value.extend((count, count * p.period) if shape.timed else (count,))
    if start is not None:
        p.time_nanos = int(start.timestamp()) * 1_000_000_000
        if until is not None and until > start:
            p.duration_nanos = int((until - start).total_seconds()) * 1_000_000_000
    return p
