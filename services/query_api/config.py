"""The query API's settings and their defaults."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QueryConfig:
    max_decompressed_bytes: int = 64 << 20  # a stored pprof once gunzipped, as at ingest
    max_merge_profiles: int = 10_000  # one merge reads at most this many stored profiles
    use_windows: bool = True  # merge whole clean hours and days from the compactor's windows

    def __post_init__(self) -> None:
        for name in ("max_decompressed_bytes", "max_merge_profiles"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
