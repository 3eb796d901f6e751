"""The compactor scenario's choice of day, checked against the compactor's own schedule without
any service: its daily window must be due at whatever time of day the suite runs."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from services.compactor import schedule
from services.compactor.config import CompactorConfig
from shared.windows import DAY, epoch
from tests.faults.harness import closed_day

# Far longer than the scenario runs: from its start to its last check, the day stays closed and
# none of its raw profiles or windows is due for retention.
SCENARIO = timedelta(hours=1)


def test_the_compactor_scenario_day_is_closed_at_every_minute_of_the_day():
    cfg = CompactorConfig()
    midnight = datetime(2026, 3, 2, tzinfo=timezone.utc)
    for minute in range(24 * 60):
        now = midnight + timedelta(minutes=minute)
        day = epoch(closed_day(now))
        assert day % DAY == 0, now
        at_start = schedule.horizon(epoch(now), cfg)
        at_end = schedule.horizon(epoch(now + SCENARIO), cfg)
        assert day + DAY <= at_start.closed_before, f"at {now:%H:%M} the day is not closed yet"
        assert day >= at_end.raw_before and day >= at_end.windows_before, now
