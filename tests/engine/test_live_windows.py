"""Poll windows: an evaluation given only each store's polls from its window on (plus its latest
before), then the week's polls for the stores it found unsettled, equals the evaluation given all
the polls, whatever the data and the batches (the replays of `test_live_promise`)."""

from datetime import datetime, timedelta

import polars as pl
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from store_monitor.engine import evaluate_live
from store_monitor.engine.live import LiveEvaluation, poll_windows
from store_monitor.frames import LIVE_STATE, PollWindows

from .frames import hours, instant, polls, zones
from .test_live_promise import PROFILE, Dataset, Frames, batchings, datasets


def polls_from(poll_frame: pl.DataFrame, windows: PollWindows) -> pl.DataFrame:
    """Each store's polls from its window's start on, and its latest poll before (the inactive
    one of an instant with both), as the database reads them."""
    since = poll_frame.join(windows.since, on="store_id", how="left").with_columns(
        since=pl.coalesce("since", pl.lit(windows.default))
    )
    at = pl.col("timestamp_utc")
    before = (
        since.filter(at < pl.col("since"))
        .sort("store_id", "timestamp_utc", "status")
        .group_by("store_id")
        .last()
    )
    return pl.concat([before, since.filter(at >= pl.col("since"))]).select(poll_frame.columns)


def windowed(frames: Frames, state: pl.DataFrame, now: datetime) -> LiveEvaluation:
    """What the service does: the windows first, then the week for the unsettled stores."""
    poll_frame, hour_frame, zone_frame = frames
    windows = poll_windows(state, now=now)
    first = evaluate_live(
        polls_from(poll_frame, windows), hour_frame, zone_frame, state, now=now, windows=windows
    )
    unsettled = poll_frame.filter(pl.col("store_id").is_in(first.unsettled.implode()))
    return first.merged(evaluate_live(unsettled, hour_frame, zone_frame, state, now=now))


def assert_same(got: LiveEvaluation, expected: LiveEvaluation) -> None:
    assert got.unsettled.is_empty()
    for name in ("down_now", "opened", "closed", "state"):
        assert_frame_equal(getattr(got, name), getattr(expected, name), check_exact=True)


@PROFILE
@given(data=datasets(), draw=st.data())
def test_windows_give_the_evaluation_of_all_polls(data: Dataset, draw: st.DataObject) -> None:
    frames = data.frames()
    state = LIVE_STATE.to_frame()
    for cut in draw.draw(batchings(frames[0])):
        received = frames[0].filter(pl.col("timestamp_utc") <= cut)
        if received.is_empty():
            continue
        now = received["timestamp_utc"].max()
        assert isinstance(now, datetime)
        expected = evaluate_live(received, frames[1], frames[2], state, now=now)
        assert_same(windowed((received, frames[1], frames[2]), state, now), expected)
        state = expected.state


def test_an_incident_across_the_window_start_needs_the_week() -> None:
    """Down since long before its window: the window alone cannot tell where the incident began."""
    down = [("s", f"2023-01-23 {hour:02}:00", "inactive") for hour in range(1, 12)]
    frames = (polls(("s", "2023-01-23 00:00", "active"), *down), hours(), zones(("s", "UTC")))
    now = instant("2023-01-23 11:00")
    state = pl.DataFrame([("s", now - timedelta(hours=1), None)], schema=LIVE_STATE, orient="row")
    windows = poll_windows(state, now=now)
    assert windows.since["since"].to_list() == [instant("2023-01-23 09:00")]

    first = evaluate_live(
        polls_from(frames[0], windows), *frames[1:], state, now=now, windows=windows
    )

    assert first.unsettled.to_list() == ["s"]
    assert first.state.is_empty()
    got = windowed(frames, state, now)
    assert_same(got, evaluate_live(*frames, state, now=now))
    assert got.down_now["since"].to_list() == [instant("2023-01-23 00:30")]
