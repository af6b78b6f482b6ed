"""The report's CSV form: the one writer behind the CLI's file and the service's download."""

import polars as pl

from store_monitor.frames import REPORT


def report_csv_bytes(rows: pl.DataFrame, *, header: bool = True) -> bytes:
    """Rows of schema `REPORT` as CSV: `\\n` line ends, every number with exactly 2 decimals.

    Concatenating the chunks of a report (header on the first only) gives the whole report's bytes.
    """
    return (
        rows.select(REPORT.names())
        .write_csv(include_header=header, float_precision=2, line_terminator="\n")
        .encode()
    )
