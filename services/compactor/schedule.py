"""Which windows and which data are due, as pure functions of the clock and the settings.

All times are epoch seconds. An hour [h, h + 3600) is closed once `now >= h + 3600 + grace`;
a day once its last hour is. Windows are kept for whole days: the window horizon is the start of
the day `window_retention` ago, and nothing before it is built or kept. Raw profiles are kept for
whole hours: the raw horizon of a service is the start of the hour `raw_retention` ago.
"""
from __future__ import annotations

from dataclasses import dataclass

from services.compactor.config import CompactorConfig
from shared.windows import DAY, HOUR, HourState, floor_to


@dataclass(frozen=True)
class Horizon:
    now: int
    closed_before: int  # hours and days ending at or before this are closed
    windows_before: int  # windows starting before this are neither built nor kept
    raw_before: int  # raw profiles created before this go, by default
    raw_before_for: tuple[tuple[str, int], ...]  # per service

    def raw_cutoffs(self) -> list[tuple[str | None, int]]:
        """(service, cutoff) for each overridden service, then (None, default) for the rest."""
        return [*self.raw_before_for, (None, self.raw_before)]


def horizon(now: float, cfg: CompactorConfig) -> Horizon:
    t = int(now)
    return Horizon(
        now=t,
        closed_before=t - cfg.grace,
        windows_before=floor_to(t - cfg.window_retention, DAY),
        raw_before=floor_to(t - cfg.raw_retention, HOUR),
        raw_before_for=tuple((s, floor_to(t - sec, HOUR)) for s, sec in cfg.raw_retention_for),
    )


def lag(h: Horizon, pending: list[HourState]) -> int:
    """How far the oldest closed hour still to compact lies behind now (0 when none is due)."""
    if not pending:
        return 0
    return max(0, h.now - (min(p.hour for p in pending) + HOUR))
