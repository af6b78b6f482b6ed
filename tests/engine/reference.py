"""A deliberately plain, per-store reference of the report contract (incidents and daily figures
included), to check the engine against.

Written straight from the contract: slow loops over Python datetimes, exact integer arithmetic.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from store_monitor.frames import DEFAULT_TIMEZONE, INCIDENTS, REPORT

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
# Instants are counted in half-microseconds so the midpoint of two polls is an exact integer.
TICKS_PER_MINUTE = 2 * 60 * 1_000_000
TICKS_PER_HOUR = 60 * TICKS_PER_MINUTE
WINDOWS = (timedelta(hours=1), timedelta(days=1), timedelta(days=7))
END_OF_DAY_FROM = time(23, 59, 59)

Interval = tuple[int, int]  # [start, end) in ticks


@dataclass(frozen=True)
class ExactRow:
    """One report row, unrounded: hour values in minutes, day and week values in hours."""

    store_id: str
    uptime_last_hour: Fraction
    uptime_last_day: Fraction
    uptime_last_week: Fraction
    downtime_last_hour: Fraction
    downtime_last_day: Fraction
    downtime_last_week: Fraction

    def values(self) -> tuple[Fraction, Fraction, Fraction, Fraction, Fraction, Fraction]:
        return (
            self.uptime_last_hour,
            self.uptime_last_day,
            self.uptime_last_week,
            self.downtime_last_hour,
            self.downtime_last_day,
            self.downtime_last_week,
        )


@dataclass(frozen=True)
class ExactIncident:
    """An incident in exact ticks, before the contract rounds its ends down to the microsecond."""

    store_id: str
    started: int
    ended: int

    def microseconds(self) -> tuple[datetime, datetime]:
        """`started_at` and `ended_at` as the contract prints them: rounded down to the µs."""
        return instant_of(self.started), instant_of(self.ended)


@dataclass(frozen=True)
class ExactDay:
    """One store's local date, unrounded, in hours; `span` is that date inside the week."""

    store_id: str
    date: date
    span: Interval
    uptime_hours: Fraction
    downtime_hours: Fraction


@dataclass(frozen=True)
class ReferenceReport:
    now: datetime | None  # None only when there is no poll and no `as_of`
    rows: list[ExactRow]
    unknown_timezones: list[str]
    ignored_polls: int
    incidents: list[ExactIncident]
    daily: list[ExactDay]

    def frame(self) -> pl.DataFrame:
        """The report as the contract prints it: rounded to 2 decimals, schema REPORT."""
        return pl.DataFrame(
            [(row.store_id, *(float(round(v, 2)) for v in row.values())) for row in self.rows],
            schema=REPORT,
            orient="row",
        )

    def incidents_frame(self) -> pl.DataFrame:
        """The incidents as the contract prints them: schema INCIDENTS, those a microsecond or
        longer once their ends are rounded down (shorter ones are only half a microsecond)."""
        printed = []
        for incident in self.incidents:
            started, ended = incident.microseconds()
            if ended > started:
                cents = round_half_up((ended - started) // ONE_US, US_PER_MINUTE)
                printed.append((incident.store_id, started, ended, float(cents)))
        return pl.DataFrame(printed, schema=INCIDENTS, orient="row")


US_PER_MINUTE = 60 * 1_000_000


def round_half_up(microseconds: int, unit: int) -> Fraction:
    """Microseconds in `unit`s, rounded half up to 2 decimals (Python's round() is half even)."""
    return Fraction((microseconds * 100 + unit // 2) // unit, 100)


def ticks(instant: datetime) -> int:
    return 2 * ((instant - EPOCH) // ONE_US)


def instant_of(tick: int) -> datetime:
    """The instant of a tick, rounded down to the microsecond."""
    return EPOCH + (tick // 2) * ONE_US


def local_to_utc(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """The first instant at which the local clock reads `day clock` or later.

    Ambiguous (clocks went back): the first occurrence. Skipped (clocks jumped over it): the jump.
    """
    wanted = datetime.combine(day, clock)

    def reads(instant: datetime) -> datetime:
        return instant.astimezone(zone).replace(tzinfo=None)

    readings = {wanted.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)}
    exact = [instant for instant in readings if reads(instant) == wanted]
    if exact:
        return min(exact)
    # In a gap the two folds straddle the jump: the clock reads less than `wanted` at the earlier
    # one and more at the later one. Find the first microsecond at which it reads `wanted` or more.
    low, high = min(readings), max(readings)
    assert reads(low) < wanted <= reads(high)
    while high - low > ONE_US:
        middle = low + (high - low) // 2
        if reads(middle) >= wanted:
            high = middle
        else:
            low = middle
    return high


def merged(intervals: list[Interval]) -> list[Interval]:
    result: list[Interval] = []
    for start, end in sorted(intervals):
        if result and start <= result[-1][1]:
            result[-1] = (result[-1][0], max(result[-1][1], end))
        else:
            result.append((start, end))
    return result


def business_intervals(
    rows: list[tuple[int, time, time]], zone: ZoneInfo, first: date, last: date
) -> list[Interval]:
    """Open intervals of every local calendar date in `[first, last]`, merged."""
    intervals: list[Interval] = []
    day = first
    while day <= last:
        for weekday, start, end in rows:
            if weekday != day.weekday():
                continue
            opens = local_to_utc(day, start, zone)
            if end >= END_OF_DAY_FROM:
                closes = local_to_utc(day + timedelta(days=1), time(0), zone)
            elif end <= start:
                closes = local_to_utc(day + timedelta(days=1), end, zone)
            else:
                closes = local_to_utc(day, end, zone)
            if closes > opens:
                intervals.append((ticks(opens), ticks(closes)))
        day += timedelta(days=1)
    return merged(intervals)


def status_segments(polls: list[tuple[datetime, str]]) -> list[tuple[int, int, str]]:
    """The step function: each poll's status from the midpoint with its neighbours."""
    by_instant: dict[int, str] = {}
    for at, status in polls:
        if by_instant.get(ticks(at)) != "inactive":
            by_instant[ticks(at)] = status
    instants = sorted(by_instant)
    far = 2**80
    bounds = [-far, *((a + b) // 2 for a, b in pairwise(instants)), far]
    return [(bounds[i], bounds[i + 1], by_instant[at]) for i, at in enumerate(instants)]


def measure(
    business: list[Interval], segments: list[tuple[int, int, str]], window: Interval
) -> dict[str, int]:
    totals = {"active": 0, "inactive": 0}
    for open_start, open_end in business:
        start, end = max(open_start, window[0]), min(open_end, window[1])
        for seg_start, seg_end, status in segments:
            overlap = min(end, seg_end) - max(start, seg_start)
            if overlap > 0:
                totals[status] += overlap
    return totals


def inactive_stretches(
    business: list[Interval], segments: list[tuple[int, int, str]], window: Interval
) -> list[Interval]:
    """Maximal stretches of `window` in business hours and inactive, in time order."""
    inactive = merged([(start, end) for start, end, status in segments if status == "inactive"])
    stretches = []
    # Both lists are merged (disjoint, not touching), so the pieces do not touch either.
    for open_start, open_end in business:
        for down_start, down_end in inactive:
            start = max(open_start, down_start, window[0])
            end = min(open_end, down_end, window[1])
            if end > start:
                stretches.append((start, end))
    return sorted(stretches)


def local_dates(
    zone: ZoneInfo, first: date, last: date, window: Interval
) -> list[tuple[date, Interval]]:
    """Each local date in `[first, last]` that overlaps `window`, with its part inside it."""
    dates = []
    day = first
    while day <= last:
        begins = ticks(local_to_utc(day, time(0), zone))
        ends = ticks(local_to_utc(day + timedelta(days=1), time(0), zone))
        start, end = max(begins, window[0]), min(ends, window[1])
        if end > start:
            dates.append((day, (start, end)))
        day += timedelta(days=1)
    return dates


def reference_report(
    polls: pl.DataFrame,
    business_hours: pl.DataFrame,
    timezones: pl.DataFrame,
    as_of: datetime | None = None,
) -> ReferenceReport:
    all_polls = [(str(s), t, str(status)) for s, t, status in polls.iter_rows()]
    now = as_of if as_of is not None else max((t for _, t, _ in all_polls), default=None)
    if now is None:
        return ReferenceReport(
            now=None, rows=[], unknown_timezones=[], ignored_polls=0, incidents=[], daily=[]
        )

    polls_of: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for store, at, status in all_polls:
        if at <= now:
            polls_of[store].append((at, status))
    hours_of: dict[str, list[tuple[int, time, time]]] = defaultdict(list)
    for store, weekday, start, end in business_hours.iter_rows():
        hours_of[store].append((weekday, start, end))
    zone_name_of = dict(timezones.iter_rows())

    # Every local date that can touch the week window, with margin for any UTC offset.
    first_day = (now - timedelta(days=9)).date()
    last_day = (now + timedelta(days=2)).date()
    windows = [(ticks(now - length), ticks(now)) for length in WINDOWS]

    rows: list[ExactRow] = []
    unknown: list[str] = []
    incidents: list[ExactIncident] = []
    daily: list[ExactDay] = []
    for store in sorted(polls_of):
        try:
            zone = ZoneInfo(zone_name_of.get(store, DEFAULT_TIMEZONE))
        except (ZoneInfoNotFoundError, ValueError):
            unknown.append(store)
            zone = ZoneInfo(DEFAULT_TIMEZONE)
        if hours_of[store]:
            business = business_intervals(hours_of[store], zone, first_day, last_day)
        else:
            business = [(windows[2][0], windows[2][1])]
        segments = status_segments(polls_of[store])
        hour, day, week = (measure(business, segments, window) for window in windows)
        rows.append(
            ExactRow(
                store_id=store,
                uptime_last_hour=Fraction(hour["active"], TICKS_PER_MINUTE),
                uptime_last_day=Fraction(day["active"], TICKS_PER_HOUR),
                uptime_last_week=Fraction(week["active"], TICKS_PER_HOUR),
                downtime_last_hour=Fraction(hour["inactive"], TICKS_PER_MINUTE),
                downtime_last_day=Fraction(day["inactive"], TICKS_PER_HOUR),
                downtime_last_week=Fraction(week["inactive"], TICKS_PER_HOUR),
            )
        )
        for start, end in inactive_stretches(business, segments, windows[2]):
            incidents.append(ExactIncident(store_id=store, started=start, ended=end))
        for local_date, span in local_dates(zone, first_day, last_day, windows[2]):
            totals = measure(business, segments, span)
            daily.append(
                ExactDay(
                    store_id=store,
                    date=local_date,
                    span=span,
                    uptime_hours=Fraction(totals["active"], TICKS_PER_HOUR),
                    downtime_hours=Fraction(totals["inactive"], TICKS_PER_HOUR),
                )
            )
    ignored = sum(1 for _, at, _ in all_polls if at > now)
    return ReferenceReport(
        now=now,
        rows=rows,
        unknown_timezones=unknown,
        ignored_polls=ignored,
        incidents=incidents,
        daily=daily,
    )
