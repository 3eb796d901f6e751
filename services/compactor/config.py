"""The compactor's settings and their defaults."""
from __future__ import annotations

from dataclasses import dataclass

from shared.settings import format_duration, format_service_duration, parse_duration, parse_service_duration, setting


def _duration(default: int, help: str) -> int:
    return setting(default, help, metavar="DURATION", parse=parse_duration, show=format_duration)


@dataclass(frozen=True)
class CompactorConfig:
    interval: float = setting(60.0, "Seconds between passes.", env="PROFEFE_COMPACT_INTERVAL", minimum=0)
    # Late uploads still land in an hour until it is closed.
    grace: int = _duration(300, "An hour is compacted this long after it ends.")
    raw_retention: int = _duration(7 * 86400, "Raw profiles older than this are deleted once their hour is compacted.")
    raw_retention_for: tuple[tuple[str, int], ...] = setting(
        (), "Per-service raw retention; repeatable (the variable: space-separated).", metavar="SERVICE=DURATION",
        parse=parse_service_duration, show=format_service_duration, multiple=True)
    window_retention: int = _duration(90 * 86400, "Pre-merged windows older than this are deleted, whole days.")
    batch: int = 200  # windows looked up per query while working through a backlog
    # A window blob no row points to and older than this is an orphan (its builder died before
    # switching the row) and is deleted; younger ones may belong to a build still under way.
    orphan_age: int = _duration(3600, "A window blob no window points to is deleted once this old: what a "
                                      "compactor killed mid-build leaves.")
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
