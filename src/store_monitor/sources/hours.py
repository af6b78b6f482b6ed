"""Business-hours files: `store_id`, `dayOfWeek` (or `day`), `start_time_local`,
`end_time_local` → frames of schema BUSINESS_HOURS."""

from typing import Final

import polars as pl

from store_monitor.frames import BUSINESS_HOURS, HOURS_FILE
from store_monitor.sources.csv_reader import (
    STORE_ID,
    Column,
    CsvFile,
    Source,
    problem,
    read_columns,
    source_name,
)
from store_monitor.sources.errors import shortened

_TIME: Final = r"^\s*(?<h>\d{1,2}):(?<m>\d{2})(?::(?<s>\d{2})(?:\.(?<f>\d{1,9}))?)?\s*$"
_PLAIN_TIME: Final = r"^[0-9]{2}:[0-5][0-9]:[0-5][0-9]$"


def read_business_hours(source: Source, *, name: str | None = None) -> pl.DataFrame:
    """Business hours with schema BUSINESS_HOURS, in file order; the day column may be
    called `dayOfWeek` or `day`. An end time of 24:00 is read as 00:00:00: the contract
    reads both as "until midnight". An empty file is zero rows."""
    name = source_name(source, name, HOURS_CSV.label)
    not_a_time = problem("is not a time HH:MM[:SS[.ffffff]]")

    def start_problem(value: str) -> str:
        if _times(pl.Series([value]), end=True).item() is not None:
            return f"{shortened(value)} is only allowed as an end time"
        return not_a_time(value)

    hours = read_columns(
        source,
        name,
        [
            STORE_ID,
            Column(
                "day_of_week",
                ("dayOfWeek", "day"),
                _days,
                problem("is not a day of the week 0..6 (0 = Monday)"),
            ),
            Column(
                "start_time_local",
                ("start_time_local",),
                _plain_times,
                start_problem,
                retry=lambda text: _times(text, end=False),
            ),
            Column(
                "end_time_local",
                ("end_time_local",),
                _plain_times,
                not_a_time,
                retry=lambda text: _times(text, end=True),
            ),
        ],
    )
    return pl.DataFrame(schema=BUSINESS_HOURS) if hours is None else hours.cast(BUSINESS_HOURS)


HOURS_CSV: Final = CsvFile(
    label="business hours",
    file_name=HOURS_FILE,
    header="store_id,dayOfWeek,start_time_local,end_time_local",
    read=read_business_hours,
)


def _days(text: pl.Expr) -> pl.Expr:
    # One character that is a number 0..6: cheaper than a regex, and the same.
    day = text.str.strip_chars()
    number = day.cast(pl.Int8, strict=False)
    return pl.when((day.str.len_bytes() == 1) & number.is_between(0, 6)).then(number)


def _plain_times(text: pl.Expr) -> pl.Expr:
    """The usual `HH:MM:SS` by Polars' fast parser, null for any other text (left to `_times`).

    The shape is checked first: the parser alone would also take a 60th second or one digit.
    """
    return pl.when(text.str.contains(_PLAIN_TIME)).then(text.str.to_time("%H:%M:%S", strict=False))


def _times(text: pl.Series, *, end: bool) -> pl.Series:
    """`HH:MM[:SS[.fraction]]` as Time, null where that's not a time of day. With `end`,
    24:00[:00] is accepted as 00:00:00 (both mean "until midnight")."""
    parts = text.rename("text").to_frame().select(pl.col("text").str.extract_groups(_TIME))
    # Not strict: \d also matches digits of other scripts, which then are not a time.
    h, m, s = (
        pl.col("text").struct.field(part).cast(pl.Int64, strict=False) for part in ("h", "m", "s")
    )
    s = s.fill_null(0)
    fraction = pl.col("text").struct.field("f").str.pad_end(6, "0").str.slice(0, 6)
    microsecond = fraction.cast(pl.Int64, strict=False).fill_null(0)
    in_day = (h <= 23) & (m <= 59) & (s <= 59)
    midnight = (h == 24) & (m == 0) & (s == 0) & (microsecond == 0)
    # Nanoseconds since midnight, Polars' Time; 24:00 wraps to 0.
    value = ((((h % 24) * 60 + m) * 60 + s) * 1_000_000 + microsecond) * 1000
    accepted = (in_day | midnight) if end else in_day
    return parts.select(pl.when(accepted).then(value.cast(pl.Time))).to_series()
