"""How many incidents each store had in the last day and in the last week, for the dashboard."""

from datetime import datetime, timedelta
from typing import Final

import polars as pl

from store_monitor.frames import INCIDENT_COUNTS

_DAY: Final = timedelta(days=1)


def incident_counts(incidents: pl.DataFrame, *, now: datetime) -> pl.DataFrame:
    """Schema `INCIDENT_COUNTS`, one row per store with an incident, sorted by store_id.

    `incidents` (schema `INCIDENTS`) are those of a report at `now`, so they all lie in the week.
    An incident counts for the last day if it overlaps `[now - 1 day, now)` for a positive time:
    it ends after the day starts (one ending exactly then does not count).
    """
    day_start = now - _DAY
    return (
        incidents.group_by("store_id")
        .agg(
            incidents_last_day=(pl.col("ended_at") > day_start).sum().cast(pl.Int32),
            incidents_last_week=pl.len().cast(pl.Int32),
        )
        .sort("store_id")
        .select(INCIDENT_COUNTS.names())
    )
