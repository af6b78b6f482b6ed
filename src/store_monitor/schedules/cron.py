"""Cron schedules: a standard five-field cron expression evaluated in an IANA time zone.

Pure: no clock, no database. `store_monitor.schedules.firing` keeps, per schedule, its next fire
time and asks `decide()` when it has passed.

Fire times follow cron's usual DST rule (cronsim's): a time skipped by spring-forward fires at
the end of the gap, a time repeated by fall-back fires once, at its first occurrence.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, available_timezones

from cronsim import CronSim, CronSimError

DEFAULT_TIMEZONE: Final = "UTC"
_CRON_FIELDS: Final = ("minute", "hour", "day of month", "month", "day of week")


class ScheduleError(ValueError):
    """A schedule that cannot be used; `field` is `cron` or `timezone`, for the API's 422."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Schedule:
    """A validated schedule; build it with `parse_schedule()`."""

    cron: str
    """Five fields separated by single spaces (as given, whitespace normalised)."""
    timezone: str


@dataclass(frozen=True)
class Decision:
    fire_now: bool
    """Whether to create a report now (once, however many fire times were missed)."""
    next_due: datetime
    """The next fire time after this decision, UTC: when to ask again."""


def parse_schedule(
    cron: str, timezone: str = DEFAULT_TIMEZONE, *, min_interval: timedelta
) -> Schedule:
    """A schedule from user input, or `ScheduleError` naming the bad field (and, for cron, the
    bad part when cronsim says which). Its fire times must be at least `min_interval` apart."""
    fields = cron.split()
    if len(fields) != len(_CRON_FIELDS):
        raise ScheduleError(
            "cron",
            f"expected 5 fields ({', '.join(_CRON_FIELDS)}), got {len(fields)}: {cron!r}",
        )
    normalised = " ".join(fields)
    if timezone not in _timezone_names():
        raise ScheduleError("timezone", f"{timezone!r} is not an IANA time zone name")
    try:
        CronSim(normalised, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as error:
        raise ScheduleError("cron", f"{error} in {normalised!r}") from error
    gap = _shortest_gap(normalised, floor=min_interval)
    if gap < min_interval:
        raise ScheduleError(
            "cron",
            f"{normalised!r} fires as little as {_minutes(gap)} apart; schedules may fire at most "
            f"once every {_minutes(min_interval)}",
        )
    return Schedule(cron=normalised, timezone=timezone)


def _shortest_gap(cron: str, *, floor: timedelta) -> timedelta:
    """The shortest time between two fire times on the zone's clock, or the first found under
    `floor`. Read from the minute and hour fields as if every day matched: a day's fire times
    are the same on every day that fires, and the next day's first may follow its last."""
    minute, hour = cron.split()[:2]
    fires = CronSim(f"{minute} {hour} * * *", datetime(2000, 1, 1, tzinfo=UTC))
    first = previous = next(fires)
    shortest = timedelta(days=1)
    for fire in fires:
        shortest = min(shortest, fire - previous)
        if shortest < floor or fire > first + timedelta(days=1):
            return shortest
        previous = fire
    raise AssertionError("a day's fire times repeat every day")  # pragma: no cover


def _minutes(interval: timedelta) -> str:
    minutes = int(interval.total_seconds() // 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def next_fire_after(schedule: Schedule, instant: datetime) -> datetime:
    """The first fire time strictly after `instant` (aware), as a UTC instant."""
    if instant.tzinfo is None:
        raise ValueError("next_fire_after needs an aware instant")
    local = instant.astimezone(ZoneInfo(schedule.timezone))
    return next(CronSim(schedule.cron, local)).astimezone(UTC)


def decide(schedule: Schedule, *, last_fired: datetime, now: datetime) -> Decision:
    """Whether to fire at `now`, given when the schedule last fired (or was created).

    A fire time missed while nothing ran (any number of them) fires once, at `now`; the next is
    then the first fire time after `now`. The caller records `now` as `last_fired` when it fires.
    """
    due = next_fire_after(schedule, last_fired)
    if due > now:
        return Decision(fire_now=False, next_due=due)
    return Decision(fire_now=True, next_due=next_fire_after(schedule, now))


@lru_cache(maxsize=1)
def _timezone_names() -> frozenset[str]:
    # The zones' names only: paths, and the system's aliases for its own zone, are not zones.
    return frozenset(available_timezones()) - {"localtime", "posixrules", "Factory"}
