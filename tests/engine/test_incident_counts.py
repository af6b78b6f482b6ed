"""Incident counts per store: the last day counts incidents that overlap it for a positive time."""

from datetime import UTC, datetime, timedelta

import polars as pl
from polars.testing import assert_frame_equal

from store_monitor.engine import incident_counts
from store_monitor.frames import INCIDENT_COUNTS, INCIDENTS

NOW = datetime(2023, 1, 25, 12, tzinfo=UTC)
DAY_START = NOW - timedelta(days=1)


def incidents(*rows: tuple[str, datetime, datetime]) -> pl.DataFrame:
    return pl.DataFrame(
        [(store, start, end, (end - start) / timedelta(minutes=1)) for store, start, end in rows],
        schema=INCIDENTS,
        orient="row",
    )


def test_counts_per_store_in_store_order() -> None:
    found = incident_counts(
        incidents(
            ("b", NOW - timedelta(days=3), NOW - timedelta(days=2)),
            # Ends exactly as the day starts: no time in the day.
            ("b", DAY_START - timedelta(hours=1), DAY_START),
            # Starts before the day, ends in it.
            ("b", DAY_START - timedelta(hours=1), DAY_START + timedelta(microseconds=1)),
            ("a", NOW - timedelta(hours=1), NOW),
        ),
        now=NOW,
    )
    assert_frame_equal(
        found,
        pl.DataFrame(
            {"store_id": ["a", "b"], "incidents_last_day": [1, 1], "incidents_last_week": [1, 3]},
            schema=INCIDENT_COUNTS,
        ),
    )


def test_no_incidents_no_rows() -> None:
    assert_frame_equal(incident_counts(INCIDENTS.to_frame(), now=NOW), INCIDENT_COUNTS.to_frame())
