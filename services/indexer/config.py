"""The indexer's settings and their defaults."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shared.settings import setting


def _optional_path(raw: str) -> Path | None:
    return Path(raw) if raw.strip() else None


@dataclass(frozen=True)
class IndexerConfig:
    batch_size: int = setting(200, "Records stored and committed together.", minimum=1, maximum=10_000)
    poll_timeout: float = 0.5  # seconds one poll waits for the first record
    backoff_initial: float = 0.2  # seconds before the first retry of a batch whose stores are down
    # An outage's end is seen within this; a retry is one connection attempt and a log line. At
    # 4 s a 10 s outage was over just after a retry and the next came 4 s later: the indexers
    # resumed 3-4 s after the store had come back.
    backoff_max: float = 2.0
    health_file: Path | None = setting(None, "Touched after every loop, for a liveness probe.", metavar="FILE",
                                       parse=_optional_path, hidden_default=True)

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 10_000:
            raise ValueError(f"batch_size must be in 1..10000, got {self.batch_size}")
        if self.poll_timeout <= 0:
            raise ValueError(f"poll_timeout must be positive, got {self.poll_timeout}")
        if not 0 < self.backoff_initial <= self.backoff_max:
            raise ValueError("want 0 < backoff_initial <= backoff_max")
