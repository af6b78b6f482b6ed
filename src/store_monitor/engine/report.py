"""The uptime/downtime report, its incidents and daily figures: three frames in, one sweep,
frames out. No I/O, no clock."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import polars as pl

from store_monitor.engine.business_hours import business_intervals, store_timezones
from store_monitor.engine.local_dates import local_dates
from store_monitor.engine.localtime import epoch_us
from store_monitor.engine.order import MAX_STORES, key_code, key_kind, key_time, sort_key
from store_monitor.engine.status import ACTIVE, INACTIVE, status_steps
from store_monitor.engine.store_codes import store_code, store_codes
from store_monitor.frames import DAILY, INCIDENTS, REPORT, UTC_INSTANT

_US_PER_MINUTE = 60_000_000
_US_PER_HOUR = 3_600_000_000
_WEEK = timedelta(weeks=1)
# Each window ends at `now`; its unit is the one its report columns are in.
_WINDOWS = {
    "last_hour": (timedelta(hours=1), _US_PER_MINUTE),
    "last_day": (timedelta(days=1), _US_PER_HOUR),
    "last_week": (_WEEK, _US_PER_HOUR),
}
# Kinds of event in the sort key, after the status steps' ACTIVE and INACTIVE.
_OPEN = 2
_CLOSE = 3
_MARKER = 4
# The start of a store's local date in the week (the window's start for the first date).
_DATE = 5
_Frame = TypeVar("_Frame", pl.DataFrame, pl.LazyFrame)


@dataclass(frozen=True, kw_only=True)
class Report:
    rows: pl.DataFrame
    """Schema `REPORT`, one row per store with a poll at or before `now`, sorted by store_id."""
    now: datetime | None
    """End of every window; None only when there were no polls and no `as_of`."""
    unknown_timezones: list[str]
    """Stores in the report whose time zone name is unknown (they use the default zone)."""
    ignored_polls: int
    """Polls after `now`, left out."""
    incidents: pl.DataFrame | None
    """Schema `INCIDENTS`, sorted by store_id then started_at; None when not asked for."""
    daily: pl.DataFrame | None
    """Schema `DAILY`, every local date of every reported store that overlaps the week, sorted by
    store_id then date; None when not asked for."""


@dataclass(frozen=True, kw_only=True)
class _Sums:
    """One batch's sweep, stores numbered from 0 within the batch."""

    totals: pl.DataFrame
    """`code` and the report's rounded columns, one row per store."""
    incidents: pl.DataFrame | None
    """`code`, `from_us`, `until_us`: each incident, in store then time order."""
    dates: pl.DataFrame | None
    """`uptime_us`, `downtime_us` of each store's local dates, in store then date order."""


def compute_report(
    polls: pl.DataFrame,
    business_hours: pl.DataFrame,
    timezones: pl.DataFrame,
    *,
    as_of: datetime | None = None,
    incidents_and_daily: bool = True,
) -> Report:
    """Uptime and downtime of every polled store within business hours, over windows ending at now;
    with `incidents_and_daily`, also its incidents and daily figures, from the same sweep.

    `now` is `as_of` or else the latest poll. Windows are half-open, `[now - length, now)`. Sums
    are exact in microseconds, then rounded half up to 2 decimals of their unit.
    """
    now = as_of if as_of is not None else polls["timestamp_utc"].max()
    if now is None:
        return _empty_report(None, 0, incidents_and_daily=incidents_and_daily)
    assert isinstance(now, datetime)
    # Without `as_of`, now is the latest poll: none is after it, and no copy is needed.
    ignored = 0 if as_of is None else polls.select((pl.col("timestamp_utc") > now).sum()).item()
    current = polls.filter(pl.col("timestamp_utc") <= now) if ignored else polls
    if current.is_empty():
        return _empty_report(now, ignored, incidents_and_daily=incidents_and_daily)
    end_us = epoch_us(now)
    start_us = epoch_us(now - _WEEK)

    physical, by_physical = store_codes(current["store_id"])
    text_order = by_physical.arg_sort(nulls_last=True)
    store_ids = by_physical.gather(text_order).drop_nulls()
    # Stores are renumbered in text order: codes keep sorts and joins on integers, and the report
    # comes out sorted by store_id for free.
    # Lazy: the renumbering and the other columns are computed within the sort key's pass, not
    # as columns of their own.
    polls_coded = current.lazy().select(
        code=pl.lit(text_order.arg_sort()).gather(pl.lit(physical)),
        at_us=pl.col("timestamp_utc").dt.epoch("us"),
        inactive=pl.col("status") == "inactive",
    )
    batches = [
        (first, min(MAX_STORES, len(store_ids) - first))
        for first in range(0, len(store_ids), MAX_STORES)
    ]
    with ThreadPoolExecutor(max_workers=1) as pool:
        # Time zones, dates and business hours don't depend on the polls: they become events on
        # another thread, one task after the other, while this one sorts the polls (Polars
        # releases the GIL).
        zones = pool.submit(store_timezones, store_ids, timezones)
        dates = pool.submit(
            lambda: (
                _store_dates(zones.result(), store_ids, now=now) if incidents_and_daily else None
            )
        )
        other_events = pool.submit(
            lambda: _other_events(
                business_hours, zones.result(), dates.result(), store_ids, batches, now=now
            )
        )
        steps = [
            status_steps(_batch(polls_coded, first, count), start_us=start_us, end_us=end_us)
            for first, count in batches
        ]
        sums = [
            _sweep(
                batch_steps,
                events,
                codes=count,
                start_us=start_us,
                end_us=end_us,
                incidents_and_daily=incidents_and_daily,
            )
            for batch_steps, events, (_, count) in zip(
                steps, other_events.result(), batches, strict=True
            )
        ]
    store_id = pl.lit(store_ids).gather("code").alias("store_id")
    firsts = [first for first, _ in batches]

    def all_stores(frames: list[pl.DataFrame]) -> pl.DataFrame:
        """The batches' frames as one, with codes of all stores."""
        return pl.concat(
            frame.with_columns(pl.col("code") + first)
            for frame, first in zip(frames, firsts, strict=True)
        )

    rows = all_stores([batch.totals for batch in sums]).select(store_id, *REPORT.names()[1:])
    incidents = daily = None
    if incidents_and_daily:
        found = all_stores([batch.incidents for batch in sums if batch.incidents is not None])
        incidents = found.select(
            store_id,
            started_at=pl.col("from_us").cast(UTC_INSTANT),
            ended_at=pl.col("until_us").cast(UTC_INSTANT),
            minutes=_round_half_up(pl.col("until_us") - pl.col("from_us"), _US_PER_MINUTE),
        )
        calendar = dates.result()
        assert calendar is not None
        # The sweep read each store's dates in the order `_store_dates` sorted them.
        measured = pl.concat(batch.dates for batch in sums if batch.dates is not None)
        assert measured.height == calendar.height
        daily = pl.concat([calendar, measured], how="horizontal").select(
            store_id,
            "date",
            uptime_hours=_round_half_up(pl.col("uptime_us"), _US_PER_HOUR),
            downtime_hours=_round_half_up(pl.col("downtime_us"), _US_PER_HOUR),
        )
    return Report(
        rows=rows,
        now=now,
        unknown_timezones=zones.result().filter("unknown_zone")["store_id"].to_list(),
        ignored_polls=ignored,
        incidents=incidents,
        daily=daily,
    )


def _empty_report(now: datetime | None, ignored: int, *, incidents_and_daily: bool) -> Report:
    return Report(
        rows=REPORT.to_frame(),
        now=now,
        unknown_timezones=[],
        ignored_polls=ignored,
        incidents=INCIDENTS.to_frame() if incidents_and_daily else None,
        daily=DAILY.to_frame() if incidents_and_daily else None,
    )


def _store_dates(zones: pl.DataFrame, store_ids: pl.Series, *, now: datetime) -> pl.DataFrame:
    """`code`, `date`, `from_us` of every store's local dates in the week, by code then date."""
    coded = zones.select(store_code(store_ids), "timezone").sort("code")
    return local_dates(coded, start=now - _WEEK, end=now)


def _batch(frame: _Frame, first: int, count: int) -> _Frame:
    """The rows of stores with codes `first .. first + count - 1`, renumbered from 0."""
    # A first batch of fewer than MAX_STORES stores is the only one: nothing to filter out.
    if first == 0 and count < MAX_STORES:
        return frame
    return frame.filter(pl.col("code").is_between(first, first + count - 1)).with_columns(
        pl.col("code") - first
    )


def _other_events(
    business_hours: pl.DataFrame,
    zones: pl.DataFrame,
    dates: pl.DataFrame | None,
    store_ids: pl.Series,
    batches: list[tuple[int, int]],
    *,
    now: datetime,
) -> list[pl.Series]:
    """Per batch of stores, the sorted keys (`order.sort_key`, origin a week before `now`) of
    events other than status steps: OPEN and CLOSE of business hours, MARKER, and DATE.

    A store without hours rows is open all week. Each store gets a MARKER at each window's start
    and at `now`, and a DATE at the start of each of its `dates` (`_store_dates`), if given: the
    sweep reads its sums at those.
    """
    start_us, end_us = epoch_us(now - _WEEK), epoch_us(now)
    code = store_code(store_ids)
    intervals = business_intervals(business_hours, zones, start=now - _WEEK, end=now).select(
        code, "open_us", "close_us"
    )
    always_open = zones.join(business_hours, on="store_id", how="anti").select(code)
    opening = pl.concat(
        [
            intervals.select("code", at_us="open_us", kind=pl.lit(_OPEN, pl.Int64)),
            intervals.select("code", at_us="close_us", kind=pl.lit(_CLOSE, pl.Int64)),
            # Typed: near the Unix epoch a bare literal would be Int32, unlike the other events.
            always_open.select(
                "code", at_us=pl.lit(start_us, pl.Int64), kind=pl.lit(_OPEN, pl.Int64)
            ),
            always_open.select(
                "code", at_us=pl.lit(end_us, pl.Int64), kind=pl.lit(_CLOSE, pl.Int64)
            ),
            *(
                []
                if dates is None
                else [dates.select("code", at_us="from_us", kind=pl.lit(_DATE, pl.Int64))]
            ),
        ]
    )
    keys = []
    for first, count in batches:
        all_codes = pl.DataFrame({"code": pl.arange(count, dtype=pl.UInt32, eager=True)})
        markers = [
            all_codes.select("code", at_us=pl.lit(at_us, pl.Int64), kind=pl.lit(_MARKER, pl.Int64))
            for at_us in _marker_times(end_us)
        ]
        keys.append(
            pl.concat([_batch(opening, first, count), *markers])
            .select(sort_key(pl.col("code"), pl.col("at_us"), pl.col("kind"), origin_us=start_us))
            .to_series()
            .sort(multithreaded=False)
        )
    return keys


def _window_starts(end_us: int) -> dict[str, int]:
    return {
        name: end_us - length // timedelta(microseconds=1) for name, (length, _) in _WINDOWS.items()
    }


def _marker_times(end_us: int) -> list[int]:
    """Where each store has a MARKER event: the window starts and `end_us`, in time order."""
    return sorted([*_window_starts(end_us).values(), end_us])


def _sweep(
    steps: pl.Series,
    other_events: pl.Series,
    *,
    codes: int,
    start_us: int,
    end_us: int,
    incidents_and_daily: bool,
) -> _Sums:
    """Sum the open time that is active and inactive per store and window, in one ordered pass
    over the sorted keys of status steps and other events (see `_other_events`); with
    `incidents_and_daily` (and DATE events), per local date too, and find the incidents.

    Every event splits time into pieces `[at_us, next at_us)` on which both the open count and
    the status are constant. A window's sum is a difference of running sums at two of the store's
    markers: its start and `end_us`; a date's, at its DATE and the store's next DATE or `end_us`.
    An incident is a run of open, inactive pieces of one store, each starting where the last ends.
    """
    events = steps.to_frame().merge_sorted(other_events.to_frame(), key="key")

    # Decoded once up front: each is used several times below.
    decoded = events.select(
        "key", kind=key_kind(pl.col("key")), at_us=key_time(pl.col("key"), origin_us=start_us)
    )
    kind, at_us = pl.col("kind"), pl.col("at_us")
    opened = pl.when(kind == _OPEN).then(1).when(kind == _CLOSE).then(-1).otherwise(0)
    status = pl.when(kind == ACTIVE).then(False).when(kind == INACTIVE).then(True)
    pieces = decoded.select(
        "key",
        "kind",
        "at_us",
        # Each store's events run from its marker at start_us to its marker at end_us, so from
        # one store's last event to the next store's first, time goes back: clipped to nothing.
        length=(at_us.shift(-1) - at_us).clip(lower_bound=0).fill_null(0),
        # Each store's opens and closes cancel out and each store has a step at start_us, so one
        # running count and one forward fill serve all stores at once. Ties at an instant make
        # zero-length pieces; only the last event of an instant has its full state.
        is_open=opened.cum_sum() > 0,
        inactive=status.forward_fill(),
    )
    length, is_open, inactive = pl.col("length"), pl.col("is_open"), pl.col("inactive")

    def before(measure: pl.Expr) -> pl.Expr:
        """The running sum of the pieces before each event, from the first store's first."""
        return measure.cum_sum().shift(1, fill_value=0)

    reads = pieces.select(
        "kind",
        "at_us",
        uptime=before(pl.when(is_open & ~inactive).then(length).otherwise(0)),
        downtime=before(pl.when(is_open & inactive).then(length).otherwise(0)),
    ).filter(kind >= _MARKER)
    at_markers = reads.filter(kind == _MARKER)
    # Sorted by store then time: each store's markers, in `marker_times` order, one after another.
    marker_times = _marker_times(end_us)
    assert at_markers.height == codes * len(marker_times)
    per_store = at_markers.select(
        pl.col(column).gather_every(len(marker_times), offset=index).alias(f"{column}_{marker}")
        for column in ("uptime", "downtime")
        for index, marker in enumerate(marker_times)
    )
    sums = []
    for name, window_start in _window_starts(end_us).items():
        for column in ("uptime", "downtime"):
            measured = pl.col(f"{column}_{end_us}") - pl.col(f"{column}_{window_start}")
            sums.append(_round_half_up(measured, _WINDOWS[name][1]).alias(f"{column}_{name}"))
    totals = per_store.select(pl.arange(codes, dtype=pl.UInt32).alias("code"), *sums)
    if not incidents_and_daily:
        return _Sums(totals=totals, incidents=None, dates=None)

    # Each store's DATEs, then its marker at end_us (a DATE is always before end_us).
    dates = (
        reads.filter((kind == _DATE) | (at_us == end_us))
        .select(
            "kind",
            uptime_us=pl.col("uptime").shift(-1) - pl.col("uptime"),
            downtime_us=pl.col("downtime").shift(-1) - pl.col("downtime"),
        )
        .filter(kind == _DATE)
        .drop("kind")
    )
    code, from_us, until_us = pl.col("code"), pl.col("from_us"), pl.col("until_us")
    starts = code.ne_missing(code.shift(1)) | from_us.ne_missing(until_us.shift(1))
    incidents = (
        pieces.lazy()
        .filter(is_open & inactive & (length > 0))
        .select(code=key_code(pl.col("key")), from_us=at_us, until_us=at_us + length)
        .with_columns(starts=starts)
        .select(
            code.filter("starts"),
            from_us.filter("starts"),
            # An incident ends with the piece before the next one's start, or the last piece.
            until_us.filter(pl.col("starts").shift(-1, fill_value=True)),
        )
        .collect()
    )
    return _Sums(totals=totals, incidents=incidents, dates=dates)


def minutes_between(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    """`end - start` (UTC instants) in minutes, rounded as the incidents' `minutes` are."""
    return _round_half_up(end.dt.epoch("us") - start.dt.epoch("us"), _US_PER_MINUTE)


def _round_half_up(microseconds: pl.Expr, unit: int) -> pl.Expr:
    """Exact microseconds → `unit`s rounded half up to 2 decimals, without float error."""
    hundredths = (microseconds * 100 + unit // 2) // unit
    # Polars divides by multiplying with 1/100, which can miss the nearest float by one ulp
    # (21.580000000000002); rounding again lands on it.
    return (hundredths / 100).round(2)
