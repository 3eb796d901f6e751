"""The compactor's settings, their defaults, and the duration syntax its flags take."""
from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+)([smhdw])")


def parse_duration(raw: str) -> int:
    """`90s`, `15m`, `36h`, `7d`, `2w`, or a combination such as `1d12h`, as whole seconds."""
    text = raw.strip().lower()
    if text.isdigit():
        return int(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"duration {raw!r} is not like 90s, 15m, 36h, 7d or 2w")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def format_duration(seconds: int) -> str:
    """The shortest of `90s`, `15m`, `36h` or `7d` that `parse_duration` reads back as `seconds`."""
    for unit in "dhm":
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def parse_service_duration(raw: str) -> tuple[str, int]:
    """`service=duration`, as in `--raw-retention-for checkout=2d`."""
    service, sep, duration = raw.partition("=")
    if not sep or not service.strip():
        raise ValueError(f"{raw!r} is not SERVICE=DURATION")
    return service.strip(), parse_duration(duration)


@dataclass(frozen=True)
class CompactorConfig:
    interval: float = 60.0  # seconds between passes
    grace: int = 300  # an hour is closed this long after it ends: late uploads still land in it
    raw_retention: int = 7 * 86400  # raw profiles older than this go, once their hour is compacted
    raw_retention_for: tuple[tuple[str, int], ...] = ()  # per-service overrides of raw_retention
    window_retention: int = 90 * 86400  # windows older than this go (whole days)
    batch: int = 200  # windows looked up per query while working through a backlog
    # A window blob no row points to and older than this is an orphan (its builder died before
    # switching the row) and is deleted; younger ones may belong to a build still under way.
    orphan_age: int = 3600
    max_decompressed_bytes: int = 256 << 20  # one raw profile or window, once gunzipped

    def __post_init__(self) -> None:
        if self.interval < 0:
            raise ValueError(f"interval must not be negative, got {self.interval}")
        for name in ("grace",):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        for name in ("raw_retention", "window_retention", "batch", "max_decompressed_bytes", "orphan_age"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for service, seconds in self.raw_retention_for:
            if seconds < 1:
                raise ValueError(f"raw retention of {service!r} must be positive, got {seconds}")

    def raw_retention_of(self, service: str) -> int:
        return dict(self.raw_retention_for).get(service, self.raw_retention)
