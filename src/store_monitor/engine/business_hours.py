"""Business hours as UTC intervals: weekly local rows → dated intervals, per store time zone."""

from datetime import datetime, time, timedelta

import polars as pl

from store_monitor.engine.localtime import computable_timezones, epoch_us, zoned_to_utc
from store_monitor.frames import DEFAULT_TIMEZONE

# An end at 23:59:59 or later is read as midnight, the end of the day.
_LAST_SECOND = time(23, 59, 59)
# Local dates are generated this far around the UTC window: zone offsets span -12 h..+14 h and
# an interval may run into the next date, so two days before and one after cover every overlap.
_DAYS_BEFORE = 2
_DAYS_AFTER = 1


def store_timezones(stores: pl.Series, timezones: pl.DataFrame) -> pl.DataFrame:
    """Each store's zone (`timezone`) and whether its own name was unknown (`unknown_zone`).

    A store without a row, or whose name is not a zone the engine can compute in (an IANA
    name Polars knows), uses the default zone. Where a store has several rows the last one wins.
    """
    named = timezones.unique(subset="store_id", keep="last", maintain_order=True)
    known = pl.col("timezone_str").is_in(computable_timezones(named["timezone_str"]).implode())
    return (
        pl.DataFrame({"store_id": stores})
        .join(named, on="store_id", how="left")
        .select(
            "store_id",
            timezone=pl.when(known).then("timezone_str").otherwise(pl.lit(DEFAULT_TIMEZONE)),
            unknown_zone=pl.col("timezone_str").is_not_null() & ~known,
        )
    )


def business_intervals(
    hours: pl.DataFrame, zones: pl.DataFrame, *, start: datetime, end: datetime
) -> pl.DataFrame:
    """UTC intervals `[open_us, close_us)` (epoch microseconds) of stores that have hours rows.

    Only stores in `zones` are considered, and only intervals overlapping `[start, end)`, clipped
    to it. Intervals may overlap; the caller's sweep counts an instant once however many cover it.
    """
    dates = pl.DataFrame(
        {
            "date": pl.date_range(
                start.date() - timedelta(days=_DAYS_BEFORE),
                end.date() + timedelta(days=_DAYS_AFTER),
                eager=True,
            )
        }
    ).with_columns(day_of_week=(pl.col("date").dt.weekday() - 1).cast(pl.Int8))

    shape = ["timezone", "day_of_week", "start_time_local", "end_time_local"]
    zoned = hours.join(zones.select("store_id", "timezone"), on="store_id", how="inner")
    ends_at_midnight = pl.col("end_time_local") >= _LAST_SECOND
    next_day = ends_at_midnight | (pl.col("end_time_local") <= pl.col("start_time_local"))
    # Many stores keep the same hours in the same zone: each distinct row is converted once.
    local = (
        zoned.select(shape)
        .unique()
        .join(dates, on="day_of_week", how="inner")
        .select(
            *shape,
            open_local=pl.col("date").dt.combine(pl.col("start_time_local")),
            close_local=(pl.col("date") + pl.duration(days=next_day.cast(pl.Int32))).dt.combine(
                pl.when(ends_at_midnight).then(pl.lit(time(0))).otherwise(pl.col("end_time_local"))
            ),
        )
    )

    start_us, end_us = epoch_us(start), epoch_us(end)
    converted = zoned_to_utc(local, {"open_utc": "open_local", "close_utc": "close_local"})
    intervals = (
        converted.lazy()
        .select(
            *shape,
            open_us=pl.col("open_utc").dt.epoch("us").clip(lower_bound=start_us),
            close_us=pl.col("close_utc").dt.epoch("us").clip(upper_bound=end_us),
        )
        .filter(pl.col("close_us") > pl.col("open_us"))
    )
    return (
        zoned.lazy()
        .join(intervals, on=shape, how="inner")
        .select("store_id", "open_us", "close_us")
        .collect()
    )
