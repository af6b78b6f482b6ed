"""Builders of tiny literal engine frames (exact engine schemas) for the engine tests."""

from datetime import UTC, datetime, time

import polars as pl

from store_monitor.frames import BUSINESS_HOURS, POLLS, REPORT, TIMEZONES

ReportRow = tuple[str, float, float, float, float, float, float]


def instant(text: str) -> datetime:
    """`"2023-01-23 10:14[:SS[.ffffff]]"` read as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def polls(*rows: tuple[str, str | datetime, str]) -> pl.DataFrame:
    """Rows of `(store_id, timestamp, status)`; a string timestamp is read as UTC."""
    return pl.DataFrame(
        [(store, instant(at) if isinstance(at, str) else at, status) for store, at, status in rows],
        schema=POLLS,
        orient="row",
    )


def hours(*rows: tuple[str, int, str | time, str | time]) -> pl.DataFrame:
    """Rows of `(store_id, day_of_week, start, end)`; day 0 = Monday, times `HH:MM[:SS[.f]]`."""
    return pl.DataFrame(
        [
            (
                store,
                day,
                time.fromisoformat(start) if isinstance(start, str) else start,
                time.fromisoformat(end) if isinstance(end, str) else end,
            )
            for store, day, start, end in rows
        ],
        schema=BUSINESS_HOURS,
        orient="row",
    )


def zones(*rows: tuple[str, str]) -> pl.DataFrame:
    """Rows of `(store_id, timezone_str)`."""
    return pl.DataFrame(list(rows), schema=TIMEZONES, orient="row")


def report(*rows: ReportRow) -> pl.DataFrame:
    """Expected report rows: hour values in minutes, day and week values in hours."""
    return pl.DataFrame(list(rows), schema=REPORT, orient="row")
