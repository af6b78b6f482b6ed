"""The live evaluation in the engine alone: 14,000 stores x 8 days, a 7-day history loaded at once,
then every store evaluated after each hourly batch of the last day, state carried forward."""

import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from benchmarks.report import data_set
from benchmarks.table import print_table
from store_monitor import frames
from store_monitor.engine import evaluate_live
from store_monitor.sources import read_business_hours, read_polls, read_timezones

STORES = 14_000
TARGET_SECONDS = 2.0


def run(root: Path) -> None:
    folder = data_set(root, stores=STORES, days=8)
    polls = read_polls(folder / frames.POLLS_FILE)
    hours = read_business_hours(folder / frames.HOURS_FILE)
    zones = read_timezones(folder / frames.TIMEZONES_FILE)
    last = polls["timestamp_utc"].max()
    assert isinstance(last, datetime)
    history_end = last - timedelta(days=1)

    def evaluate(upto: datetime, state: pl.DataFrame) -> tuple[float, pl.DataFrame, int]:
        received = polls.filter(pl.col("timestamp_utc") <= upto)
        now = received["timestamp_utc"].max()
        assert isinstance(now, datetime)
        started = time.perf_counter()
        result = evaluate_live(received, hours, zones, state, now=now)
        seconds = time.perf_counter() - started
        return seconds, result.state, result.opened.height + result.closed.height

    history_seconds, state, history_events = evaluate(history_end, frames.LIVE_STATE.to_frame())
    hourly, events = [], 0
    for hour in range(1, 25):
        seconds, state, announced = evaluate(history_end + timedelta(hours=hour), state)
        hourly.append(seconds)
        events += announced
    print_table(
        f"Live evaluation in the engine, {STORES:,} stores x 8 days ({polls.height:,} polls)",
        ["measure", "value", "target"],
        [
            [
                f"first evaluation: a 7-day history ({history_events} events)",
                f"{history_seconds:.2f} s",
                "",
            ],
            [
                f"hourly evaluation of every store, median of 24 ({events} events)",
                f"{statistics.median(hourly):.2f} s",
                "",
            ],
            [
                "hourly evaluation of every store, slowest of 24",
                f"{max(hourly):.2f} s",
                f"< {TARGET_SECONDS:.0f} s with the database",
            ],
        ],
    )
