"""The live contract's promise, as property tests: whatever the batches every store's polls arrive
in (in time order), the `incident.closed` events announced equal a later report's incidents.

A replay feeds the polls in batches (each batch: the polls up to a cut instant), evaluates every
store seen so far at N after each batch (N moves with every batch), carries the state forward and
collects the events. Then, against the report at the final N (without `as_of`), it asserts:
- Promise: every incident of the report clipped by neither end of the week (starts after
  N - 7 d, ends before N), ending after its store's first threshold and at or before its L, is in
  exactly one closed event, with the same `started_at`, `ended_at` and `minutes`.
- No contradiction: a closed event that starts after N - 7 d is one of the report's incidents,
  as the CSV writes it; one that starts earlier and ends after N - 7 d ends where a report
  incident clipped to start at N - 7 d ends; no two closed events of a store overlap.
- No flood: every closed event ends after its store's first threshold (N - 1 h at the store's
  first evaluation), but those of incidents announced opened; in particular the evaluation that
  loads a history announces no incident that ended before then, and opens only incidents ongoing
  at its N.
- Opened at most once: each (store, started_at) is opened at most once, and each opened incident
  is closed with the same start, or still announced at the end: the store down since then, or its
  incident ended at a closing after its latest poll (the closed event waits for a poll).
"""

import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

import polars as pl
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from store_monitor import synthetic
from store_monitor.engine import compute_report, evaluate_live
from store_monitor.frames import INCIDENTS, LIVE_STATE
from store_monitor.sources import read_business_hours, read_polls, read_timezones

from .frames import hours, polls, zones

settings.register_profile("live", max_examples=40, deadline=None)
settings.register_profile("live-thorough", settings.get_profile("live"), max_examples=1000)
PROFILE = settings.get_profile(os.environ.get("ENGINE_HYPOTHESIS_PROFILE_LIVE", "live"))

HOUR = timedelta(hours=1)
WEEK = timedelta(weeks=1)
BASE = datetime(2023, 1, 16, tzinfo=UTC)  # a Monday
STORE_IDS = ["1", "2", "10", "0042", "1234567890123456789"]
ZONES = ["UTC", "America/Chicago", "Asia/Kolkata", "Australia/Sydney"]


@dataclass
class Replay:
    closed: list[pl.DataFrame] = field(default_factory=list)
    opened: list[pl.DataFrame] = field(default_factory=list)
    first_threshold: dict[str, datetime] = field(default_factory=dict)
    state: pl.DataFrame = field(default_factory=LIVE_STATE.to_frame)
    down_now: pl.DataFrame | None = None


def replay(
    poll_frame: pl.DataFrame,
    hour_frame: pl.DataFrame,
    zone_frame: pl.DataFrame,
    cuts: list[datetime],
) -> Replay:
    """Evaluate after each batch of polls up to each of `cuts` (increasing)."""
    done = Replay()
    for cut in cuts:
        received = poll_frame.filter(pl.col("timestamp_utc") <= cut)
        if received.is_empty():
            continue
        now = received["timestamp_utc"].max()
        assert isinstance(now, datetime)
        result = evaluate_live(received, hour_frame, zone_frame, done.state, now=now)
        new_stores = set(result.state["store_id"]) - set(done.state["store_id"])
        for store in new_stores:
            done.first_threshold[store] = now - HOUR
        if done.state.is_empty():
            # The first evaluation loads a history: nothing that ended before N - 1 h, and only
            # incidents ongoing now are opened.
            assert (result.closed["ended_at"] > now - HOUR).all()
            assert set(result.opened["store_id"]) <= set(result.down_now["store_id"])
        done.state, done.down_now = result.state, result.down_now
        done.closed.append(result.closed)
        done.opened.append(result.opened)
    return done


def assert_promise(
    poll_frame: pl.DataFrame, hour_frame: pl.DataFrame, zone_frame: pl.DataFrame, done: Replay
) -> None:
    report = compute_report(poll_frame, hour_frame, zone_frame)
    assert report.incidents is not None
    assert report.now is not None
    now, week_start = report.now, report.now - WEEK
    latest = dict(poll_frame.group_by("store_id").agg(pl.col("timestamp_utc").max()).iter_rows())
    closed = pl.concat(done.closed).match_to_schema(INCIDENTS)
    opened = pl.concat(done.opened)

    # No flood, whatever the batches: every closed event ends after its store's first threshold,
    # but for incidents announced opened (one ongoing at N may end before N - 1 h once a late
    # store's next poll arrives; it is closed all the same).
    opened_starts = set(opened.iter_rows())
    for store, started_at, ended_at, _ in closed.iter_rows():
        if (store, started_at) not in opened_starts:
            assert ended_at > done.first_threshold[store]

    promised = [
        row
        for row in report.incidents.iter_rows()
        if week_start < row[1]
        and row[2] < now
        and done.first_threshold[row[0]] < row[2] <= latest[row[0]]
    ]
    announced = Counter(closed.iter_rows())
    for row in promised:
        assert announced[row] == 1, f"{row} announced closed {announced[row]} times"

    reported = set(report.incidents.iter_rows())
    clipped_ends = {
        (store, ended_at) for store, started_at, ended_at, _ in reported if started_at == week_start
    }
    for row in closed.iter_rows():
        store, started_at, ended_at, _ = row
        if started_at > week_start:
            assert row in reported, f"closed event {row} is not a report incident"
        elif ended_at > week_start:
            assert (store, ended_at) in clipped_ends, f"closed event {row} contradicts the report"

    for (store,), events in closed.sort("store_id", "started_at").group_by(
        "store_id", maintain_order=True
    ):
        starts, ends = events["started_at"].to_list(), events["ended_at"].to_list()
        assert all(end <= start for end, start in zip(ends, starts[1:], strict=False)), store

    assert opened.select(pl.struct("store_id", "started_at").is_unique().all()).item()
    still_announced = set(
        done.state.drop_nulls("announced_started_at")
        .select("store_id", "announced_started_at")
        .iter_rows()
    )
    closed_starts = set(closed.select("store_id", "started_at").iter_rows())
    for row in opened.iter_rows():
        assert (row in closed_starts) != (row in still_announced), f"opened {row}"
    assert done.down_now is not None
    down_since = set(done.down_now.select("store_id", "since").iter_rows())
    for store, started_at in still_announced - down_since:
        # Not down now but not closed yet: it ended at a closing after the store's latest poll.
        assert any(
            row[0] == store and row[2] > max(started_at, latest[store]) for row in reported
        ), f"{store} announced since {started_at}"
    ongoing = {store: started_at for store, started_at, ended_at, _ in reported if ended_at == now}
    for store, since in down_since:
        assert store in ongoing
        assert since == ongoing[store] or (ongoing[store] == week_start and since <= week_start)


@dataclass(frozen=True)
class Dataset:
    poll_rows: list[tuple[str, datetime, str]]
    hour_rows: list[tuple[str, int, time, time]]
    zone_rows: list[tuple[str, str]]

    def frames(self) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        return polls(*self.poll_rows), hours(*self.hour_rows), zones(*self.zone_rows)


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    """A few stores polled every 1 min to 3 h over up to about 4 days, with runs of one status
    (so incidents of many lengths), business hours (none, some days, every day) and zones."""
    poll_rows, hour_rows, zone_rows = [], [], []
    minutes = st.integers(0, 24 * 60 - 1).map(lambda minute: time(minute // 60, minute % 60))
    for store in draw(st.lists(st.sampled_from(STORE_IDS), min_size=1, max_size=4, unique=True)):
        at = BASE + timedelta(seconds=draw(st.integers(0, 86_400)))
        status = draw(st.sampled_from(["active", "inactive"]))
        for _ in range(draw(st.integers(1, 30))):
            poll_rows.append((store, at, status))
            at += timedelta(seconds=draw(st.integers(60, 3 * 3600)))
            if draw(st.integers(0, 2)) == 0:
                status = "inactive" if status == "active" else "active"
        shape = draw(st.sampled_from(["24x7", "some days", "every day"]))
        if shape == "some days":
            for _ in range(draw(st.integers(1, 6))):
                hour_rows.append((store, draw(st.integers(0, 6)), draw(minutes), draw(minutes)))
        elif shape == "every day":
            # Daily closings: incidents that end at a closing, after the store's latest poll.
            opening, closing = draw(minutes), draw(minutes)
            hour_rows.extend((store, day, opening, closing) for day in range(7))
        zone_rows.append((store, draw(st.sampled_from(ZONES))))
    return Dataset(poll_rows, hour_rows, zone_rows)


def hourly_after_history(poll_frame: pl.DataFrame, history: timedelta) -> list[datetime]:
    """A history of `history` at once, then hourly batches to the last poll."""
    first, last = poll_frame["timestamp_utc"].min(), poll_frame["timestamp_utc"].max()
    assert isinstance(first, datetime)
    assert isinstance(last, datetime)
    cuts = [first + history]
    while cuts[-1] < last:
        cuts.append(cuts[-1] + HOUR)
    return cuts


BATCHINGS = ("history then the rest", "hourly", "random sizes")


@st.composite
def batchings(
    draw: st.DrawFn, poll_frame: pl.DataFrame, kinds: tuple[str, ...] = BATCHINGS
) -> list[datetime]:
    """Cut instants: a 2-day history then the rest at once, hourly batches after a history of
    random length, or batches of random sizes (cuts at random polls)."""
    first, last = poll_frame["timestamp_utc"].min(), poll_frame["timestamp_utc"].max()
    assert isinstance(first, datetime)
    assert isinstance(last, datetime)
    kind = draw(st.sampled_from(kinds))
    note(f"batching: {kind}")
    if kind == "history then the rest":
        return [first + 2 * timedelta(days=1), last]
    if kind == "hourly":
        return hourly_after_history(poll_frame, HOUR * draw(st.integers(0, 48)))
    instants = sorted(set(poll_frame["timestamp_utc"]))
    chosen = draw(st.lists(st.sampled_from(instants), max_size=12, unique=True))
    return [*sorted(chosen), last]


@PROFILE
@given(data=datasets(), draw=st.data())
def test_closed_events_equal_the_report_incidents_whatever_the_batches(
    data: Dataset, draw: st.DataObject
) -> None:
    frames = data.frames()
    cuts = draw.draw(batchings(frames[0]))
    assert_promise(*frames, replay(*frames, cuts))


Frames = tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]


@pytest.fixture(scope="module")
def synthetic_frames(tmp_path_factory: pytest.TempPathFactory) -> Frames:
    """30 realistic stores over 9 days (`store_monitor.synthetic`), read as the CLI reads them."""
    files = synthetic.generate(tmp_path_factory.mktemp("live"), stores=30, days=9, seed=17)
    return (
        read_polls(files.store_status),
        read_business_hours(files.menu_hours),
        read_timezones(files.timezones),
    )


@settings(PROFILE, max_examples=8)
@given(draw=st.data())
def test_the_promise_holds_on_synthetic_data(synthetic_frames: Frames, draw: st.DataObject) -> None:
    frames = synthetic_frames
    # Hourly batches of these 9 days are the next test's (about 200 evaluations each time).
    cuts = draw.draw(batchings(frames[0], kinds=("history then the rest", "random sizes")))
    assert_promise(*frames, replay(*frames, cuts))


def test_the_promise_holds_on_synthetic_data_in_hourly_batches(synthetic_frames: Frames) -> None:
    frames = synthetic_frames
    # Seven days of history, so that the week clips incidents as the batches go by.
    done = replay(*frames, hourly_after_history(frames[0], 7 * timedelta(days=1)))
    assert_promise(*frames, done)
    assert sum(batch.height for batch in done.closed) > 0
