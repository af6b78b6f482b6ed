"""The CSV forms of the report, its incidents and its daily figures: the one writer of each behind
the CLI's files and the service's downloads."""

import polars as pl

from store_monitor.frames import DAILY, INCIDENTS, REPORT

# ISO 8601 in UTC with microseconds, e.g. 2023-01-24T10:44:30.000000Z (instants are whole µs).
_INSTANT_FORMAT = "%Y-%m-%dT%H:%M:%S%.6fZ"


def report_csv_bytes(rows: pl.DataFrame, *, header: bool = True) -> bytes:
    """Rows of schema `REPORT` as CSV: `\\n` line ends, every number with exactly 2 decimals.

    Concatenating the chunks of a report (header on the first only) gives the whole report's bytes.
    """
    return _csv_bytes(rows.select(REPORT.names()), header=header)


def incidents_csv_bytes(incidents: pl.DataFrame, *, header: bool = True) -> bytes:
    """Rows of schema `INCIDENTS` as CSV: `store_id,started_at,ended_at,minutes`, instants as
    `2023-01-24T10:44:30.000000Z`, minutes with 2 decimals. Chunks concatenate as the report's do.
    """
    return _csv_bytes(incidents.select(INCIDENTS.names()), header=header)


def daily_csv_bytes(daily: pl.DataFrame, *, header: bool = True) -> bytes:
    """Rows of schema `DAILY` as CSV: `store_id,date,uptime_hours,downtime_hours`, the store's
    local date as `YYYY-MM-DD`, hours with 2 decimals. Chunks concatenate as the report's do."""
    return _csv_bytes(daily.select(DAILY.names()), header=header)


def _csv_bytes(frame: pl.DataFrame, *, header: bool) -> bytes:
    return frame.write_csv(
        include_header=header,
        float_precision=2,
        line_terminator="\n",
        datetime_format=_INSTANT_FORMAT,
        date_format="%Y-%m-%d",
    ).encode()
