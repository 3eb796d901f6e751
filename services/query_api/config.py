"""What the query API does for one request: its limits, and whether it reads windows."""
from __future__ import annotations

from dataclasses import dataclass

from shared.pprof import DEFAULT_MAX_DECOMPRESSED
from shared.settings import setting


@dataclass(frozen=True)
class QueryConfig:
    max_decompressed_bytes: int = setting(DEFAULT_MAX_DECOMPRESSED, "Largest stored pprof once gunzipped.",
                                          minimum=1)
    max_merge_profiles: int = setting(10_000, "Most stored profiles one merge reads.", minimum=1)
    use_windows: bool = setting(True, "Merge whole clean hours and days from pre-merged windows.",
                                flag="--merge-windows", negatable=True)
    flame_max_nodes: int = setting(10_000, "Most nodes a flame graph answer holds; the rest is summed into \"other\".",
                                   minimum=10)

    def __post_init__(self) -> None:
        for name in ("max_decompressed_bytes", "max_merge_profiles", "flame_max_nodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
