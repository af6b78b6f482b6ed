"""The uptime/downtime report: three frames in, one report frame out. No I/O, no clock."""

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from store_monitor.engine.business_hours import business_intervals, store_timezones
from store_monitor.engine.localtime import epoch_us
from store_monitor.engine.order import MAX_STORES, sort_key
from store_monitor.engine.schema import REPORT
from store_monitor.engine.status import status_changes

_US_PER_MINUTE = 60_000_000
_US_PER_HOUR = 3_600_000_000
_WEEK = timedelta(weeks=1)
# Each window ends at `now`; its unit is the one its report columns are in.
_WINDOWS = {
    "last_hour": (timedelta(hours=1), _US_PER_MINUTE),
    "last_day": (timedelta(days=1), _US_PER_HOUR),
    "last_week": (_WEEK, _US_PER_HOUR),
}


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


def compute_report(
    polls: pl.DataFrame,
    business_hours: pl.DataFrame,
    timezones: pl.DataFrame,
    *,
    as_of: datetime | None = None,
) -> Report:
    """Uptime and downtime of every polled store within business hours, over windows ending at now.

    `now` is `as_of` or else the latest poll. Windows are half-open, `[now - length, now)`. Sums
    are exact in microseconds, then rounded half up to 2 decimals of their unit.
    """
    now = as_of if as_of is not None else polls["timestamp_utc"].max()
    if now is None:
        return Report(rows=REPORT.to_frame(), now=None, unknown_timezones=[], ignored_polls=0)
    assert isinstance(now, datetime)
    current = polls.filter(pl.col("timestamp_utc") <= now)
    ignored = polls.height - current.height
    if current.is_empty():
        return Report(rows=REPORT.to_frame(), now=now, unknown_timezones=[], ignored_polls=ignored)
    end_us = epoch_us(now)
    start_us = epoch_us(now - _WEEK)

    # Stores are numbered in text order: codes keep sorts and joins on integers, and the report
    # comes out sorted by store_id for free.
    store_ids = current["store_id"].unique().sort()
    code = pl.col("store_id").cast(pl.Enum(store_ids)).to_physical().cast(pl.UInt32)
    zones = store_timezones(store_ids, timezones)
    intervals = business_intervals(business_hours, zones, start=now - _WEEK, end=now)
    opening = _opening_changes(
        intervals.with_columns(code=code),
        always_open=zones.join(business_hours, on="store_id", how="anti").select(code=code),
        start_us=start_us,
        end_us=end_us,
    )
    polls_coded = current.select(
        code=code,
        at_us=pl.col("timestamp_utc").dt.epoch("us"),
        inactive=pl.col("status") == "inactive",
    )
    totals = pl.concat(
        [
            _batch_totals(
                polls_coded,
                opening,
                first,
                min(MAX_STORES, len(store_ids) - first),
                start_us=start_us,
                end_us=end_us,
            )
            for first in range(0, len(store_ids), MAX_STORES)
        ]
    )
    rows = totals.select(pl.lit(store_ids).gather("code").alias("store_id"), *REPORT.names()[1:])
    return Report(
        rows=rows,
        now=now,
        unknown_timezones=zones.filter("unknown_zone")["store_id"].to_list(),
        ignored_polls=ignored,
    )


def _batch_totals(
    polls: pl.DataFrame,
    opening: pl.DataFrame,
    first: int,
    count: int,
    *,
    start_us: int,
    end_us: int,
) -> pl.DataFrame:
    """Report totals of the stores with codes `first .. first + count - 1`."""
    in_batch = pl.col("code").is_between(first, first + count - 1)
    rebased = pl.col("code") - first
    steps = status_changes(
        polls.filter(in_batch).with_columns(rebased), start_us=start_us, end_us=end_us
    )
    totals = _sweep(
        steps, opening.filter(in_batch).with_columns(rebased), codes=count, end_us=end_us
    )
    return totals.with_columns(pl.col("code") + first)


def _opening_changes(
    intervals: pl.DataFrame, *, always_open: pl.DataFrame, start_us: int, end_us: int
) -> pl.DataFrame:
    """Business hours as changes `(code, at_us, opened)` of each store's count of open intervals.

    +1 where an interval opens, -1 where it closes; a store without hours rows is open all week.
    Every store's changes sum to zero, which lets the sweep keep one running count for all stores.
    """
    return pl.concat(
        [
            intervals.select("code", at_us="open_us", opened=pl.lit(1, pl.Int32)),
            intervals.select("code", at_us="close_us", opened=pl.lit(-1, pl.Int32)),
            always_open.select("code", at_us=pl.lit(start_us), opened=pl.lit(1, pl.Int32)),
            always_open.select("code", at_us=pl.lit(end_us), opened=pl.lit(-1, pl.Int32)),
        ]
    )


def _sweep(steps: pl.DataFrame, opening: pl.DataFrame, *, codes: int, end_us: int) -> pl.DataFrame:
    """Sum the open time that is active and inactive per store and window, in one ordered pass.

    Every change splits time into pieces `[at_us, next at_us)` on which both the open count and
    the status are constant; window starts are changes too, so no piece straddles one.
    """
    all_codes = pl.DataFrame({"code": pl.arange(codes, dtype=pl.UInt32, eager=True)})
    window_starts = [
        all_codes.select("code", at_us=pl.lit(end_us - length // timedelta(microseconds=1)))
        for length, _ in _WINDOWS.values()
    ]
    others = (
        pl.concat([opening, *window_starts], how="diagonal")
        .with_columns(pl.col("opened").fill_null(0), flag=pl.lit(None, pl.Boolean))
        .with_columns(sort_key(origin_us=end_us - _WEEK // timedelta(microseconds=1)))
        .sort("key")
    )
    ordered = steps.with_columns(opened=pl.lit(0, pl.Int32)).merge_sorted(
        others.select("code", "at_us", inactive="flag", key="key", opened="opened"), key="key"
    )

    same_store_after = pl.col("code") == pl.col("code").shift(-1)
    pieces = ordered.select(
        "code",
        "at_us",
        length=pl.when(same_store_after)
        .then(pl.col("at_us").shift(-1) - pl.col("at_us"))
        .otherwise(end_us - pl.col("at_us")),
        # Each store's changes sum to zero and each store starts with a status at the week's
        # start, so one running count and one forward fill serve all stores at once. Ties at an
        # instant make zero-length pieces; only the last row of an instant has its full state.
        is_open=pl.col("opened").cum_sum() > 0,
        inactive=pl.col("inactive").forward_fill(),
    ).filter(pl.col("is_open") & (pl.col("length") > 0))

    sums = []
    for name, (length, unit) in _WINDOWS.items():
        in_window = pl.col("at_us") >= end_us - length // timedelta(microseconds=1)
        for column, inactive in (("uptime", False), ("downtime", True)):
            measured = pl.col("length").filter(in_window & (pl.col("inactive") == inactive)).sum()
            sums.append(_round_half_up(measured, unit).alias(f"{column}_{name}"))
    return (
        all_codes.join(pieces.group_by("code").agg(sums), on="code", how="left")
        .with_columns(pl.exclude("code").fill_null(0.0))
        .sort("code")
    )


def _round_half_up(microseconds: pl.Expr, unit: int) -> pl.Expr:
    """Exact microseconds → `unit`s rounded half up to 2 decimals, without float error."""
    hundredths = (microseconds * 100 + unit // 2) // unit
    # Polars divides by multiplying with 1/100, which can miss the nearest float by one ulp
    # (21.580000000000002); rounding again lands on it.
    return (hundredths / 100).round(2)
