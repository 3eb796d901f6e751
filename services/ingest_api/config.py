"""What the ingest API accepts: the limits of one upload."""
from __future__ import annotations

from dataclasses import dataclass

from shared.model import MAX_BODY_BYTES, MAX_LABELS
from shared.pprof import DEFAULT_MAX_DECOMPRESSED
from shared.settings import setting


@dataclass(frozen=True)
class IngestConfig:
    max_body_bytes: int = setting(MAX_BODY_BYTES, "Largest upload accepted, as sent; 413 above.", minimum=1)
    max_decompressed_bytes: int = setting(DEFAULT_MAX_DECOMPRESSED, "Largest pprof once gunzipped; 413 above.",
                                          minimum=1)
    max_labels: int = setting(MAX_LABELS, "Most labels on one profile; 400 above.", minimum=1)
    max_label_key_chars: int = setting(256, "Longest label key; 400 above.", minimum=1)
    max_label_value_chars: int = setting(1024, "Longest label value; 400 above.", minimum=1)
    max_service_chars: int = setting(128, "Longest service name; 400 above.", minimum=1)

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_decompressed_bytes", "max_labels", "max_label_key_chars",
                     "max_label_value_chars", "max_service_chars"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
