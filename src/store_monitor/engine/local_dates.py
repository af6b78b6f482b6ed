"""Each store's local calendar dates within a window: where its daily figures start and end."""

from datetime import datetime, timedelta

import polars as pl

from store_monitor.engine.localtime import epoch_us, zoned_to_utc

# Zone offsets span -12 h..+14 h: the local dates of the window's ends are within a day of their
# UTC dates, and the last one's end is the next date's midnight.
_DAYS_BEFORE = 1
_DAYS_AFTER = 2


def local_dates(zones: pl.DataFrame, *, start: datetime, end: datetime) -> pl.DataFrame:
    """Per row of `zones` (a `timezone` column and any others), each local date of its zone
    that overlaps `[start, end)`: the row's other columns, `date` and `from_us`, the epoch
    microsecond the date starts at (its local midnight), or `start` for a date that began before.
    In the order of `zones`, then of dates.

    A date runs from its local midnight to the next (23 or 25 hours on DST days). Midnight means
    the contract's first instant at which the clock reads 00:00 or later, as business hours do.
    """
    candidates = pl.DataFrame(
        {
            "date": pl.date_range(
                start.date() - timedelta(days=_DAYS_BEFORE),
                end.date() + timedelta(days=_DAYS_AFTER),
                eager=True,
            )
        }
    )
    # Each zone's midnights are converted once, however many stores share it.
    midnights = zoned_to_utc(
        zones.select(pl.col("timezone").unique())
        .join(candidates, how="cross")
        .with_columns(midnight_local=pl.col("date").cast(pl.Datetime("us"))),
        {"midnight_utc": "midnight_local"},
    )
    start_us, end_us = epoch_us(start), epoch_us(end)
    midnight_us = pl.col("midnight_utc").dt.epoch("us")
    dated = (
        midnights.lazy()
        .sort("timezone", "date")
        .select(
            "timezone",
            "date",
            from_us=midnight_us,
            until_us=midnight_us.shift(-1).over("timezone"),
        )
        .filter((pl.col("from_us") < end_us) & (pl.col("until_us") > start_us))
        .select("timezone", "date", pl.col("from_us").clip(lower_bound=start_us))
    )
    return (
        zones.lazy()
        .join(dated, on="timezone", how="inner", maintain_order="left_right")
        .drop("timezone")
        .collect()
    )
