"""Polls files: `store_id`, `timestamp_utc`, `status` → frames of schema POLLS.

A poll is stamped from 2000-01-01 (`EARLIEST_POLL`) to the caller's `latest`, the server's clock
plus a small skew.
"""

from datetime import UTC, datetime
from typing import Final

import polars as pl

from store_monitor.frames import POLLS, POLLS_FILE, STATUS, UTC_INSTANT
from store_monitor.sources.csv_reader import (
    STORE_ID,
    Column,
    CsvFile,
    Source,
    problem,
    read_columns,
    source_name,
)
from store_monitor.sources.errors import SourceError, shortened

EARLIEST_POLL: Final = datetime(2000, 1, 1, tzinfo=UTC)
"""Polls stamped before this are refused: such a stamp is a broken clock or a placeholder."""

# The real export's format, parsed first: a fixed-width format takes Polars' fast parser.
_FAST_TIMESTAMP: Final = "%Y-%m-%d %H:%M:%S.%6f UTC"
# Anything else is rewritten to "date time[.fraction]±hh:mm" and parsed with this.
_OFFSET_TIMESTAMP: Final = "%Y-%m-%d %H:%M:%S%.f%z"


def read_polls(
    source: Source, *, name: str | None = None, latest: datetime | None = None
) -> pl.DataFrame:
    """Polls with schema POLLS, in file order. A file without polls is an error.

    Timestamps: `2023-01-22 12:09:39.388884 UTC`, or ISO 8601 (`T` or space, optional
    fraction, `Z` or a numeric offset, converted to UTC); a timestamp without any zone is
    taken as UTC, as the column's name says. A poll before EARLIEST_POLL or after `latest`
    (the clock plus a skew; None: no upper bound) is refused.
    """
    name = source_name(source, name, POLLS_CSV.label)
    not_a_timestamp = problem(
        "is not a timestamp like '2023-01-22 12:09:39.388884 UTC' "
        "or ISO 8601 like '2023-01-22T12:09:39Z'"
    )

    def in_range(instant: pl.Expr) -> pl.Expr:
        after_earliest = instant >= EARLIEST_POLL
        return after_earliest if latest is None else after_earliest & (instant <= latest)

    def timestamp_problem(value: str) -> str:
        instant = _other_timestamps(pl.Series([value])).item()
        if instant is None:
            return not_a_timestamp(value)
        if instant < EARLIEST_POLL:
            return f"{shortened(value)} is before {EARLIEST_POLL:%Y-%m-%d}, earlier than any poll"
        assert latest is not None
        return (
            f"{shortened(value)} is after {latest.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC, "
            "later than a poll can be (the current time plus the allowed clock skew)"
        )

    polls = read_columns(
        source,
        name,
        [
            STORE_ID,
            Column(
                "timestamp_utc",
                ("timestamp_utc",),
                # Timestamps are nearly all distinct: Polars' cache of parsed values only costs.
                lambda text: text.str.to_datetime(
                    _FAST_TIMESTAMP, time_unit="us", time_zone="UTC", strict=False, cache=False
                ),
                timestamp_problem,
                retry=_other_timestamps,
                accept=in_range,
            ),
            Column(
                "status",
                ("status",),
                _exact_status,
                problem("is not 'active' or 'inactive'"),
                retry=lambda text: (
                    text.str.strip_chars().str.to_lowercase().cast(STATUS, strict=False)
                ),
            ),
        ],
    )
    if polls is None:
        raise SourceError(name, "no polls (the file is empty)")
    if polls.height == 0:
        raise SourceError(name, "no polls (the file has a header but no rows)")
    return polls.cast(POLLS)


POLLS_CSV: Final = CsvFile(
    label="polls",
    file_name=POLLS_FILE,
    header="store_id,status,timestamp_utc",
    read=read_polls,
    bounded_by_clock=True,
)


def _other_timestamps(text: pl.Series) -> pl.Series:
    """ISO 8601 and other shapes of the real format, converted to UTC; no zone means UTC.

    Rewritten to "date time[.fraction]±hh:mm" with literal replacements (a regex with
    captures costs about ten times more) and parsed by Polars' general parser.
    """
    value = (
        pl.col("text")
        .str.strip_chars()
        .str.replace_many(
            {"T": " ", "t": " ", " UTC": "+00:00", "UTC": "+00:00", "Z": "+00:00", "z": "+00:00"},
            leftmost=True,  # " UTC" over the "T" inside it
        )
    )
    with_offset = pl.when(value.str.contains(r"[+-]\d{2}(?::?\d{2})?$")).then(value)
    normalised = with_offset.otherwise(value + "+00:00")
    parsed = normalised.str.to_datetime(
        _OFFSET_TIMESTAMP, time_unit="us", time_zone="UTC", strict=False, cache=False
    )
    return pl.DataFrame({"text": text}).select(parsed.cast(UTC_INSTANT)).to_series()


def _exact_status(text: pl.Expr) -> pl.Expr:
    """The status where the text is exactly one of its values; `retry` takes any other text.

    Two comparisons cost a fraction of a cast to the enum."""
    return (
        pl.when(text == "active")
        .then(pl.lit("active", STATUS))
        .when(text == "inactive")
        .then(pl.lit("inactive", STATUS))
    )
