"""The indexer's settings and their defaults."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class IndexerConfig:
    batch_size: int = 200  # records polled, stored and committed together
    poll_timeout: float = 0.5  # seconds one poll waits for the first record
    blob_writers: int = 8  # blobs of one batch stored concurrently
    backoff_initial: float = 0.2  # seconds before the first retry of a batch whose stores are down
    backoff_max: float = 10.0
    health_file: Path | None = None  # touched after every loop, for a liveness probe

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 10_000:
            raise ValueError(f"batch_size must be in 1..10000, got {self.batch_size}")
        if not 1 <= self.blob_writers <= 64:
            raise ValueError(f"blob_writers must be in 1..64, got {self.blob_writers}")
        if self.poll_timeout <= 0:
            raise ValueError(f"poll_timeout must be positive, got {self.poll_timeout}")
        if not 0 < self.backoff_initial <= self.backoff_max:
            raise ValueError("want 0 < backoff_initial <= backoff_max")
