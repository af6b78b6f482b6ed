"""Property tests: on random small data sets the engine reports what the plain reference does,
incidents and daily figures included, and they add up to the report's figures."""

import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from fractions import Fraction
from itertools import pairwise
from random import Random

import polars as pl
from hypothesis import given, note, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from store_monitor.engine import Report, compute_report

from .frames import hours, polls, zones
from .reference import (
    ONE_US,
    TICKS_PER_HOUR,
    TICKS_PER_MINUTE,
    ExactRow,
    ReferenceReport,
    instant_of,
    reference_report,
    round_half_up,
    ticks,
)

# Profiles applied to these tests only (a global profile would also drive schemathesis).
settings.register_profile("engine", max_examples=200, deadline=None)
settings.register_profile("engine-thorough", settings.get_profile("engine"), max_examples=5000)
PROFILE = settings.get_profile(os.environ.get("ENGINE_HYPOTHESIS_PROFILE", "engine"))

ZONES = [
    "America/Chicago",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/St_Johns",
    "Pacific/Chatham",
    "Mars/Phobos",  # unknown: falls back to America/Chicago
    "",  # empty (missing data, as the reader keeps it): the same
]
# DST changes of 2023 in the zones above (US, EU, Australia, Chatham).
TRANSITION_DAYS = [
    datetime(2023, month, day, tzinfo=UTC)
    for month, day in [(3, 12), (3, 26), (4, 2), (9, 24), (10, 1), (10, 29), (11, 5)]
]
STORE_IDS = [
    "1",
    "2",
    "9",
    "10",
    "100",
    "0042",
    "1234567890123456789",
    "5000000000000000001",
    "9223372036854775807",
]
# Window lengths in the report's units: minutes for the hour, hours for the day and week.
WINDOW_LENGTHS = {"hour": 60.0, "day": 24.0, "week": 168.0}
COLUMNS = [f"{kind}_last_{window}" for kind in ("uptime", "downtime") for window in WINDOW_LENGTHS]
# The engine may place a midpoint on a whole microsecond, or use float seconds: a few microseconds
# of slack, which only matters when the exact value is within them of a rounding tie.
SLACK_MINUTES = Fraction(10, 60 * 10**6)
SLACK_HOURS = Fraction(10, 3600 * 10**6)

DST_TIMES = [
    time(0),
    time(1, 30),
    time(2),
    time(2, 15),
    time(2, 30),
    time(2, 45),
    time(3),
    time(3, 15),
]
START_TIMES = st.one_of(
    st.sampled_from(DST_TIMES),
    st.integers(0, 24 * 60 - 1).map(lambda minute: time(minute // 60, minute % 60)),
)
END_TIMES = st.one_of(START_TIMES, st.sampled_from([time(23, 59, 59), time(23, 59, 59, 500000)]))


@dataclass(frozen=True)
class Dataset:
    """Literal rows, so that a failing example prints as something one can paste into a test."""

    poll_rows: list[tuple[str, datetime, str]]
    hour_rows: list[tuple[str, int, time, time]]
    zone_rows: list[tuple[str, str]]
    as_of: datetime | None

    def frames(self) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        return polls(*self.poll_rows), hours(*self.hour_rows), zones(*self.zone_rows)


def truncated(instant: datetime, grain: timedelta) -> datetime:
    return instant - (instant - datetime(2023, 1, 1, tzinfo=UTC)) % grain


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    if draw(st.integers(0, 4)):
        anchor = draw(st.sampled_from(TRANSITION_DAYS)) + timedelta(
            microseconds=draw(st.integers(-86_400 * 10**6, 4 * 86_400 * 10**6))
        )
    else:
        anchor = datetime(2023, 1, 1, tzinfo=UTC) + timedelta(
            microseconds=draw(st.integers(0, 364 * 86_400 * 10**6))
        )
    grain = draw(
        st.sampled_from([timedelta(microseconds=1), timedelta(seconds=1), timedelta(hours=1)])
    )
    anchor = truncated(anchor, grain)

    # Offsets from the anchor: far apart, at window edges, and a few after it.
    edges = [timedelta(0), timedelta(hours=1), timedelta(days=1), timedelta(days=7)]
    offsets = st.one_of(
        st.sampled_from(edges).map(lambda edge: -edge),
        st.integers(-8 * 86_400 * 10**6, 0).map(lambda us: timedelta(microseconds=us)),
        st.integers(-3 * 3600, 3 * 3600).map(lambda s: timedelta(seconds=s)),
    )
    poll_rows: list[tuple[str, datetime, str]] = []
    hour_rows: list[tuple[str, int, time, time]] = []
    zone_rows: list[tuple[str, str]] = []
    for store in draw(st.lists(st.sampled_from(STORE_IDS), min_size=1, max_size=4, unique=True)):
        for _ in range(draw(st.integers(0, 6))):
            if poll_rows and draw(st.integers(0, 4)) == 0:
                at = draw(st.sampled_from([row[1] for row in poll_rows]))  # same instant again
            else:
                at = truncated(anchor + draw(offsets), grain)
            poll_rows.append((store, at, draw(st.sampled_from(["active", "inactive"]))))
        if draw(st.booleans()):
            for _ in range(draw(st.integers(1, 5))):
                hour_rows.append(
                    (store, draw(st.integers(0, 6)), draw(START_TIMES), draw(END_TIMES))
                )
        if draw(st.integers(0, 3)):
            zone_rows.append((store, draw(st.sampled_from(ZONES))))
    as_of = anchor if draw(st.booleans()) else None
    return Dataset(draw(st.permutations(poll_rows)), hour_rows, zone_rows, as_of)


def allowed_roundings(exact: Fraction, slack: Fraction) -> set[float]:
    """2-decimal values within half a cent (plus slack) of `exact`: one, or both sides of a tie."""
    lowest = math.ceil((exact - slack) * 100 - Fraction(1, 2))
    highest = math.floor((exact + slack) * 100 + Fraction(1, 2))
    return {float(Fraction(cents, 100)) for cents in range(lowest, highest + 1)}


def assert_row_matches(got: dict[str, object], want: ExactRow) -> None:
    for column, exact in zip(COLUMNS, want.values(), strict=True):
        slack = SLACK_MINUTES if column.endswith("hour") else SLACK_HOURS
        allowed = allowed_roundings(exact, slack)
        assert got[column] in allowed, (
            f"store {want.store_id} {column}: got {got[column]!r}, exact {float(exact)!r}"
        )


@PROFILE
@given(datasets())
def test_engine_matches_reference(data: Dataset) -> None:
    # Spelled out by hand: the schemathesis pytest plugin blanks Hypothesis' "Failing test case".
    note(repr(data))
    poll_frame, hour_frame, zone_frame = data.frames()
    result = compute_report(poll_frame, hour_frame, zone_frame, as_of=data.as_of)
    want = reference_report(poll_frame, hour_frame, zone_frame, as_of=data.as_of)

    if want.now is not None:
        assert result.now == want.now
    assert result.ignored_polls == want.ignored_polls
    assert result.rows["store_id"].to_list() == [row.store_id for row in want.rows]
    reported = set(result.rows["store_id"])
    assert set(result.unknown_timezones) & reported == set(want.unknown_timezones)
    assert set(result.unknown_timezones) <= {
        s for s, name in data.zone_rows if name in ("Mars/Phobos", "")
    }
    for got, row in zip(result.rows.iter_rows(named=True), want.rows, strict=True):
        assert_row_matches(got, row)
    assert_incidents_and_daily_match(result, want)


def assert_incidents_and_daily_match(result: Report, want: ReferenceReport) -> None:
    assert result.incidents is not None
    assert result.daily is not None
    # Incident ends are instants rounded down to the microsecond, as both sides print them.
    assert_frame_equal(result.incidents, want.incidents_frame(), check_exact=True)
    assert result.daily.select("store_id", "date").rows() == [
        (day.store_id, day.date) for day in want.daily
    ]
    for got, day in zip(result.daily.iter_rows(named=True), want.daily, strict=True):
        for column, exact in [
            ("uptime_hours", day.uptime_hours),
            ("downtime_hours", day.downtime_hours),
        ]:
            assert got[column] in allowed_roundings(exact, SLACK_HOURS), (
                f"store {day.store_id} {day.date} {column}: got {got[column]!r}, "
                f"exact {float(exact)!r}"
            )


@PROFILE
@given(datasets())
def test_incidents_and_days_add_up_to_the_report(data: Dataset) -> None:
    note(repr(data))
    poll_frame, hour_frame, zone_frame = data.frames()
    want = reference_report(poll_frame, hour_frame, zone_frame, as_of=data.as_of)
    result = compute_report(poll_frame, hour_frame, zone_frame, as_of=data.as_of)
    if want.now is None:
        return
    assert result.incidents is not None
    assert result.daily is not None
    now = ticks(want.now)
    windows = {
        "hour": (now - 60 * TICKS_PER_MINUTE, TICKS_PER_MINUTE),
        "day": (now - 24 * TICKS_PER_HOUR, TICKS_PER_HOUR),
        "week": (now - 168 * TICKS_PER_HOUR, TICKS_PER_HOUR),
    }
    for row, got in zip(want.rows, result.rows.iter_rows(named=True), strict=True):
        store = row.store_id
        exact = dict(zip(COLUMNS, row.values(), strict=True))
        # The reference, unrounded: incidents' overlap with each window is its downtime, and the
        # days add up to the week, exactly.
        incidents = [i for i in want.incidents if i.store_id == store]
        days = [d for d in want.daily if d.store_id == store]
        for window, (start, unit) in windows.items():
            overlap = sum(max(0, i.ended - max(i.started, start)) for i in incidents)
            assert Fraction(overlap, unit) == exact[f"downtime_last_{window}"]
        assert sum(d.uptime_hours for d in days) == exact["uptime_last_week"]
        assert sum(d.downtime_hours for d in days) == exact["downtime_last_week"]
        assert [d.span for d in days] == sorted(d.span for d in days)
        assert days[0].span[0] == windows["week"][0]
        assert days[-1].span[1] == now
        assert all(a[1] == b[0] for a, b in pairwise(d.span for d in days))
        assert 7 <= len(days) <= 9

        # The engine, in its microseconds: its incidents' overlap with each window, rounded as
        # the report rounds, is that window's downtime to the last digit.
        mine = result.incidents.filter(pl.col("store_id") == store)
        for window, (start, unit) in windows.items():
            window_start = instant_of(start)
            overlap_us = sum(
                (ended - max(started, window_start)) // ONE_US
                for started, ended in mine.select("started_at", "ended_at").rows()
                if ended > window_start
            )
            cents = round_half_up(overlap_us, unit // 2)
            assert float(cents) == got[f"downtime_last_{window}"], (store, window)
        my_days = result.daily.filter(pl.col("store_id") == store)
        for kind in ("uptime", "downtime"):
            # Each rounded day is within half a cent of its exact value, and so is the week.
            spread = Fraction(my_days.height + 1, 200) + SLACK_HOURS
            total = sum(Fraction(v).limit_denominator(100) for v in my_days[f"{kind}_hours"])
            assert abs(total - Fraction(got[f"{kind}_last_week"]).limit_denominator(100)) <= spread


@PROFILE
@given(datasets())
def test_business_time_never_exceeds_the_window(data: Dataset) -> None:
    note(repr(data))
    result = compute_report(*data.frames(), as_of=data.as_of)
    for row in result.rows.iter_rows(named=True):
        for window, length in WINDOW_LENGTHS.items():
            up, down = row[f"uptime_last_{window}"], row[f"downtime_last_{window}"]
            assert up >= 0
            assert down >= 0
            # Each of the two rounded values may be up to half a cent above its exact value.
            assert up + down <= length + 0.01 + 1e-9


@PROFILE
@given(datasets(), st.randoms(use_true_random=False))
def test_stores_coded_as_an_enum_give_the_same_report(data: Dataset, random: Random) -> None:
    """A database read codes the polls' stores as an Enum of their ids, in any order and maybe
    with ids no poll has by `now`: the report is the one of the same ids as texts."""
    note(repr(data))
    poll_frame, hour_frame, zone_frame = data.frames()
    ids = sorted({*poll_frame["store_id"], "no polls"})
    random.shuffle(ids)
    coded = poll_frame.with_columns(pl.col("store_id").cast(pl.Enum(ids)))

    as_texts = compute_report(poll_frame, hour_frame, zone_frame, as_of=data.as_of)
    as_codes = compute_report(coded, hour_frame, zone_frame, as_of=data.as_of)

    assert as_codes.now == as_texts.now
    assert as_codes.ignored_polls == as_texts.ignored_polls
    assert as_codes.unknown_timezones == as_texts.unknown_timezones
    assert_frame_equal(as_codes.rows, as_texts.rows)
    assert as_codes.incidents is not None
    assert as_texts.incidents is not None
    assert_frame_equal(as_codes.incidents, as_texts.incidents)
    assert as_codes.daily is not None
    assert as_texts.daily is not None
    assert_frame_equal(as_codes.daily, as_texts.daily)
