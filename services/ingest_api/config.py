"""The ingest API's settings and their defaults."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IngestConfig:
    max_body_bytes: int = 8 << 20  # request body as sent (413 above)
    max_decompressed_bytes: int = 64 << 20  # a pprof once gunzipped (413 above)
    max_labels: int = 64
    max_label_key_chars: int = 256
    max_label_value_chars: int = 1024
    max_service_chars: int = 128
    publish_timeout: float = 10.0  # seconds to wait for the queue to make a record durable

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_decompressed_bytes", "max_labels", "max_label_key_chars",
                     "max_label_value_chars", "max_service_chars"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.publish_timeout <= 0:
            raise ValueError(f"publish_timeout must be positive, got {self.publish_timeout}")
