"""Column names and dtypes of the frames every layer shares (readers, database, engine).

Conformed once at the boundary; everything after trusts them. Imports no other layer."""

from dataclasses import dataclass
from datetime import datetime
from typing import Final

import polars as pl

STATUS: Final[pl.Enum] = pl.Enum(["active", "inactive"])
UTC_INSTANT: Final[pl.Datetime] = pl.Datetime("us", "UTC")

POLLS: Final = pl.Schema({"store_id": pl.String(), "timestamp_utc": UTC_INSTANT, "status": STATUS})
# day_of_week: 0 = Monday ... 6 = Sunday (the contract's numbering, not Polars' 1-based one).
BUSINESS_HOURS: Final = pl.Schema(
    {
        "store_id": pl.String,
        "day_of_week": pl.Int8,
        "start_time_local": pl.Time,
        "end_time_local": pl.Time,
    }
)
TIMEZONES: Final = pl.Schema({"store_id": pl.String, "timezone_str": pl.String})
# Which stores each owner may see; a store may have several owners.
OWNERS: Final = pl.Schema({"owner_id": pl.String, "store_id": pl.String})

REPORT: Final = pl.Schema(
    {
        "store_id": pl.String,
        "uptime_last_hour": pl.Float64,
        "uptime_last_day": pl.Float64,
        "uptime_last_week": pl.Float64,
        "downtime_last_hour": pl.Float64,
        "downtime_last_day": pl.Float64,
        "downtime_last_week": pl.Float64,
    }
)

# Maximal stretches of business time a store was inactive in the week, instants to the microsecond.
INCIDENTS: Final = pl.Schema(
    {
        "store_id": pl.String(),
        "started_at": UTC_INSTANT,
        "ended_at": UTC_INSTANT,
        "minutes": pl.Float64(),
    }
)
# Per store: its incidents that overlap the last day, and the last week (for the dashboard).
INCIDENT_COUNTS: Final = pl.Schema(
    {
        "store_id": pl.String(),
        "incidents_last_day": pl.Int32(),
        "incidents_last_week": pl.Int32(),
    }
)
# The week by the store's local calendar dates.
DAILY: Final = pl.Schema(
    {
        "store_id": pl.String(),
        "date": pl.Date(),
        "uptime_hours": pl.Float64(),
        "downtime_hours": pl.Float64(),
    }
)

# Live (issue 17). Per store, what was announced, carried from one evaluation to the next:
# `threshold`, below which no ended incident is announced again, and the `started_at` of the
# incident announced opened and not yet announced closed (null if none).
LIVE_STATE: Final = pl.Schema(
    {"store_id": pl.String(), "threshold": UTC_INSTANT, "announced_started_at": UTC_INSTANT}
)


@dataclass(frozen=True, kw_only=True)
class PollWindows:
    """Where a live evaluation reads each store's polls from (`engine.live.poll_windows`): its
    polls from `since` on, plus its latest before."""

    since: pl.DataFrame
    """`store_id`, `since` (UTC_INSTANT): the stores with a state row."""
    default: datetime
    """Every other store's (at its first evaluation)."""


# The stores down at an evaluation's `now`: since when, for how many minutes at `now`, and the
# store's latest poll.
DOWN_NOW: Final = pl.Schema(
    {
        "store_id": pl.String(),
        "since": UTC_INSTANT,
        "minutes": pl.Float64(),
        "latest_poll_at": UTC_INSTANT,
    }
)
# `incident.opened` events; `incident.closed` events have the schema `INCIDENTS`.
INCIDENTS_OPENED: Final = pl.Schema({"store_id": pl.String(), "started_at": UTC_INSTANT})

DEFAULT_TIMEZONE: Final = "America/Chicago"

# The input files' names in a data folder, as the original export named them.
POLLS_FILE: Final = "store_status.csv"
HOURS_FILE: Final = "menu_hours.csv"
TIMEZONES_FILE: Final = "timezones.csv"
OWNERS_FILE: Final = "store_owners.csv"
