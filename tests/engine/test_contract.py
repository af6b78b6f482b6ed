"""One test per rule of the report contract, on tiny literal frames with hand-worked numbers.

Dates: 2023-01-23 is a Monday (no DST anywhere near it in the zones used here). Expected rows are
`(store_id, up_hour [min], up_day [h], up_week [h], down_hour [min], down_day [h], down_week [h])`.
"""

import zoneinfo
from datetime import date, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from store_monitor.engine import Report, compute_report
from store_monitor.frames import DAILY, INCIDENTS, REPORT

from .frames import ReportRow, hours, instant, polls, report, zones

MONDAY, TUESDAY, WEDNESDAY, SUNDAY = 0, 1, 2, 6
NO_HOURS = hours()
NO_ZONES = zones()


def run(
    poll_frame: pl.DataFrame,
    hour_frame: pl.DataFrame = NO_HOURS,
    zone_frame: pl.DataFrame = NO_ZONES,
    as_of: str | None = None,
) -> Report:
    return compute_report(
        poll_frame, hour_frame, zone_frame, as_of=None if as_of is None else instant(as_of)
    )


def assert_rows(result: Report, *expected: ReportRow) -> None:
    # Exact: "rounded to 2 decimals" means the float nearest to k/100, as a literal 1.74 is.
    assert_frame_equal(result.rows, report(*expected), check_exact=True)


def assert_incidents(result: Report, *expected: tuple[str, str, str, float]) -> None:
    """Expected `(store_id, started_at, ended_at, minutes)`, instants as UTC text."""
    frame = pl.DataFrame(
        [(store, instant(start), instant(end), minutes) for store, start, end, minutes in expected],
        schema=INCIDENTS,
        orient="row",
    )
    assert result.incidents is not None
    assert_frame_equal(result.incidents, frame, check_exact=True)


def assert_daily(result: Report, *expected: tuple[str, str, float, float]) -> None:
    """Expected `(store_id, local date, uptime_hours, downtime_hours)`."""
    frame = pl.DataFrame(
        [(store, date.fromisoformat(day), up, down) for store, day, up, down in expected],
        schema=DAILY,
        orient="row",
    )
    assert result.daily is not None
    assert_frame_equal(result.daily, frame, check_exact=True)


def utc(store: str) -> pl.DataFrame:
    return zones((store, "UTC"))


def test_worked_example_of_the_contract() -> None:
    # Open Monday 09:00-12:00 UTC; polls 10:14 active, 11:15 inactive; now Monday 12:00.
    # Midpoint 10:44:30: active 09:00-10:44:30 = 104.5 min = 1.7417 h -> 1.74,
    # inactive 10:44:30-12:00 = 75.5 min = 1.2583 h -> 1.26. Last hour [11:00, 12:00) inactive.
    # The week starts at the previous Monday 12:00, when that day's opening has just ended.
    result = run(
        polls(("s", "2023-01-23 10:14", "active"), ("s", "2023-01-23 11:15", "inactive")),
        hours(("s", MONDAY, "09:00", "12:00")),
        utc("s"),
        as_of="2023-01-23 12:00",
    )
    assert_rows(result, ("s", 0, 1.74, 1.74, 60, 1.26, 1.26))
    assert result.now == instant("2023-01-23 12:00")


def test_poll_exactly_at_window_start_and_at_now() -> None:
    # 24x7. Polls 10:00 inactive (= now-1h) and 11:00 active (= now, so counted). Midpoint 10:30.
    # Hour [10:00, 11:00): 30 min each. Day/week: inactive until 10:30 (first status holds
    # before the first poll): 23.5 h / 167.5 h; active 0.5 h.
    result = run(
        polls(("s", "2023-01-23 10:00", "inactive"), ("s", "2023-01-23 11:00", "active")),
        zone_frame=utc("s"),
    )
    assert_rows(result, ("s", 30, 0.5, 0.5, 30, 23.5, 167.5))
    assert result.ignored_polls == 0


def test_business_interval_edges_at_window_edges_are_half_open() -> None:
    # Open Monday 09:00-10:00 and 11:00-12:00 UTC, now Monday 11:00, always active.
    # Hour [10:00, 11:00): the first opening ends at its start, the second starts at its end: 0.
    # Day [Sun 11:00, Mon 11:00): Monday 09:00-10:00 = 1 h. Week [Mon Jan 16 11:00, now): the
    # Jan 16 11:00-12:00 opening starts exactly at the window start (1 h) + Jan 23 09:00-10:00.
    result = run(
        polls(("s", "2023-01-23 08:00", "active")),
        hours(("s", MONDAY, "09:00", "10:00"), ("s", MONDAY, "11:00", "12:00")),
        utc("s"),
        as_of="2023-01-23 11:00",
    )
    assert_rows(result, ("s", 0, 1, 2, 0, 0, 0))


def test_now_is_the_latest_poll_of_all_stores() -> None:
    # "a" last polled 10:00 (active), "b" at 12:00: now = 12:00 for both, and "a"'s last status
    # holds until then. 24x7.
    result = run(
        polls(("a", "2023-01-23 10:00", "active"), ("b", "2023-01-23 12:00", "inactive")),
        zone_frame=zones(("a", "UTC"), ("b", "UTC")),
    )
    assert result.now == instant("2023-01-23 12:00")
    assert result.ignored_polls == 0
    assert_rows(result, ("a", 60, 24, 168, 0, 0, 0), ("b", 0, 0, 0, 60, 24, 168))


def test_polls_after_as_of_are_ignored_and_counted() -> None:
    # as_of 12:00; the 12:10 and 12:20 inactive polls are after now. Were the 12:10 one used, the
    # midpoint 11:35 would make 11:35-12:00 inactive. Only the 11:00 active poll counts: 24x7 up.
    result = run(
        polls(
            ("s", "2023-01-23 11:00", "active"),
            ("s", "2023-01-23 12:10", "inactive"),
            ("s", "2023-01-23 12:20", "inactive"),
        ),
        zone_frame=utc("s"),
        as_of="2023-01-23 12:00",
    )
    assert result.now == instant("2023-01-23 12:00")
    assert result.ignored_polls == 2
    assert_rows(result, ("s", 60, 24, 168, 0, 0, 0))


def test_as_of_earlier_than_last_poll_keeps_a_poll_exactly_at_as_of() -> None:
    # as_of 12:00: the 12:00 inactive poll is at now, so it counts; the 12:30 one is ignored.
    # Midpoint of 11:00 and 12:00 is 11:30: hour 30/30 min; day: active 23.5 h, inactive 0.5 h.
    result = run(
        polls(
            ("s", "2023-01-23 11:00", "active"),
            ("s", "2023-01-23 12:00", "inactive"),
            ("s", "2023-01-23 12:30", "active"),
        ),
        zone_frame=utc("s"),
        as_of="2023-01-23 12:00",
    )
    assert result.ignored_polls == 1
    assert_rows(result, ("s", 30, 23.5, 167.5, 30, 0.5, 0.5))


def test_as_of_later_than_every_poll_holds_the_last_status() -> None:
    # Polls 10:00 inactive, 11:00 active, now 13:00: active from 10:30 until now.
    # Hour 60 min up; day: up 2.5 h, down 21.5 h; week: up 2.5 h, down 165.5 h.
    result = run(
        polls(("s", "2023-01-23 10:00", "inactive"), ("s", "2023-01-23 11:00", "active")),
        zone_frame=utc("s"),
        as_of="2023-01-23 13:00",
    )
    assert result.now == instant("2023-01-23 13:00")
    assert result.ignored_polls == 0
    assert_rows(result, ("s", 60, 2.5, 2.5, 0, 21.5, 165.5))


def test_overnight_hours_run_past_midnight() -> None:
    # Monday 22:00-02:00 UTC: open Mon 22:00 -> Tue 02:00. Polls Mon 23:00 active, Tue 01:00
    # inactive: midpoint 00:00. now Tue 01:30.
    # Hour [00:30, 01:30): inactive 60 min. Day [Mon 01:30, Tue 01:30): up 22:00-00:00 = 2 h,
    # down 00:00-01:30 = 1.5 h. Week [Tue Jan 17 01:30, now) also holds the tail of Mon Jan 16's
    # opening, Jan 17 01:30-02:00, active (first status before the first poll): up 2.5 h.
    result = run(
        polls(("s", "2023-01-23 23:00", "active"), ("s", "2023-01-24 01:00", "inactive")),
        hours(("s", MONDAY, "22:00", "02:00")),
        utc("s"),
        as_of="2023-01-24 01:30",
    )
    assert_rows(result, ("s", 0, 2, 2.5, 60, 1.5, 1.5))


def test_overnight_hours_wrap_from_sunday_to_monday() -> None:
    # Sunday 22:00-02:00 UTC: open Sun 22:00 -> Mon 02:00. Polls Sun 23:00 inactive, Mon 00:00
    # active: midpoint 23:30. now Mon 01:00.
    # Hour [00:00, 01:00): up 60. Day [Sun 01:00, Mon 01:00): down 22:00-23:30 = 1.5 h,
    # up 23:30-01:00 = 1.5 h. Week [Mon Jan 16 01:00, now) adds Jan 16 01:00-02:00 (the tail of
    # Sunday Jan 15's opening), inactive as the first poll: down 2.5 h.
    result = run(
        polls(("s", "2023-01-22 23:00", "inactive"), ("s", "2023-01-23 00:00", "active")),
        hours(("s", SUNDAY, "22:00", "02:00")),
        utc("s"),
        as_of="2023-01-23 01:00",
    )
    assert_rows(result, ("s", 60, 1.5, 1.5, 0, 1.5, 2.5))


def test_split_shifts() -> None:
    # Monday 09:00-11:00 and 17:00-20:00 UTC. Polls 10:00 active, 18:00 inactive: midpoint 14:00
    # falls between the shifts. now Mon 21:00: hour 0; up 2 h, down 3 h.
    result = run(
        polls(("s", "2023-01-23 10:00", "active"), ("s", "2023-01-23 18:00", "inactive")),
        hours(("s", MONDAY, "09:00", "11:00"), ("s", MONDAY, "17:00", "20:00")),
        utc("s"),
        as_of="2023-01-23 21:00",
    )
    assert_rows(result, ("s", 0, 2, 2, 0, 3, 3))


@pytest.mark.parametrize("end", ["23:59:59", "23:59:59.5", "23:59:59.999999"])
def test_end_at_23_59_59_or_later_counts_as_midnight(end: str) -> None:
    # Monday 20:00-<end>, now Tue 00:00, active. Midnight, not 23:59:59: the last hour is a full
    # 60 min (23:59:59 would give 59.98), day and week 4 h.
    result = run(
        polls(("s", "2023-01-23 20:00", "active")),
        hours(("s", MONDAY, "20:00", end)),
        utc("s"),
        as_of="2023-01-24 00:00",
    )
    assert_rows(result, ("s", 60, 4, 4, 0, 0, 0))


def test_end_equal_to_start_is_24_hours_from_start() -> None:
    # Monday 10:00-10:00: open Mon 10:00 -> Tue 10:00. now Tue 12:00, active.
    # Hour [11:00, 12:00): closed (Tuesday has no row). Day [Mon 12:00, Tue 12:00): 22 h.
    # Week [Tue Jan 17 12:00, now): Jan 16's opening ended Jan 17 10:00, so only Jan 23's: 24 h.
    result = run(
        polls(("s", "2023-01-23 09:00", "active")),
        hours(("s", MONDAY, "10:00", "10:00")),
        utc("s"),
        as_of="2023-01-24 12:00",
    )
    assert_rows(result, ("s", 0, 22, 24, 0, 0, 0))


def test_midnight_to_midnight_is_the_whole_day() -> None:
    # Wednesday 00:00-00:00: all of Wednesday Jan 25. now Thu 00:30, inactive.
    # Hour [Wed 23:30, Thu 00:30): 30 min. Day [Wed 00:30, Thu 00:30): 23.5 h. Week: 24 h.
    result = run(
        polls(("s", "2023-01-25 12:00", "inactive")),
        hours(("s", WEDNESDAY, "00:00", "00:00")),
        utc("s"),
        as_of="2023-01-26 00:30",
    )
    assert_rows(result, ("s", 0, 0, 0, 30, 23.5, 24))


def test_overlapping_and_duplicate_hours_are_merged() -> None:
    # Monday 09:00-12:00 twice, 11:00-13:00, 10:00-10:30, and Sunday 23:00-10:00 (reaching into
    # Monday): the union is Sun 23:00 -> Mon 13:00 = 14 h. now Mon 13:30, active.
    # Hour [12:30, 13:30): 30 min. Day [Sun 13:30, Mon 13:30): 14 h. Week: the Jan 15/16
    # openings ended before Jan 16 13:30, so 14 h.
    result = run(
        polls(("s", "2023-01-23 09:00", "active")),
        hours(
            ("s", MONDAY, "09:00", "12:00"),
            ("s", MONDAY, "09:00", "12:00"),
            ("s", MONDAY, "11:00", "13:00"),
            ("s", MONDAY, "10:00", "10:30"),
            ("s", SUNDAY, "23:00", "10:00"),
        ),
        utc("s"),
        as_of="2023-01-23 13:30",
    )
    assert_rows(result, ("s", 30, 14, 14, 0, 0, 0))


def test_store_without_hours_is_open_24x7() -> None:
    # No hours, Chicago (irrelevant when always open). Polls Fri Jan 20 12:00 active, Mon Jan 23
    # 12:00 inactive (now): midpoint Sun Jan 22 00:00. Hour and day inactive. Week
    # [Jan 16 12:00, now): active until Jan 22 00:00 = 5.5 days = 132 h, inactive 36 h.
    result = run(
        polls(("s", "2023-01-20 12:00", "active"), ("s", "2023-01-23 12:00", "inactive")),
        zone_frame=zones(("s", "America/Chicago")),
    )
    assert_rows(result, ("s", 0, 0, 132, 60, 24, 36))


def test_store_with_hours_on_some_days_is_closed_on_the_others() -> None:
    # Monday and Wednesday 09:00-17:00 UTC only. now Thu Jan 26 12:00, active.
    # Hour: Thursday closed, 0. Day [Wed 12:00, Thu 12:00): 5 h. Week: Mon + Wed = 16 h.
    result = run(
        polls(("s", "2023-01-23 09:00", "active")),
        hours(("s", MONDAY, "09:00", "17:00"), ("s", WEDNESDAY, "09:00", "17:00")),
        utc("s"),
        as_of="2023-01-26 12:00",
    )
    assert_rows(result, ("s", 0, 5, 16, 0, 0, 0))


def test_store_without_timezone_row_uses_chicago() -> None:
    # Monday 09:00-10:00 Chicago (UTC-6 in January) = 15:00-16:00 UTC. now Mon 15:30 UTC, active.
    # Hour [14:30, 15:30): 30 min. Day 0.5 h. Week [Jan 16 15:30, now): + Jan 16 15:30-16:00.
    result = run(
        polls(("s", "2023-01-23 12:00", "active")),
        hours(("s", MONDAY, "09:00", "10:00")),
        as_of="2023-01-23 15:30",
    )
    assert_rows(result, ("s", 30, 0.5, 1, 0, 0, 0))
    assert result.unknown_timezones == []


def test_unknown_timezone_falls_back_to_chicago_and_is_listed() -> None:
    # Same numbers as with no timezone row for "mars"; "utc" (known) is open 09:00-10:00 UTC.
    result = run(
        polls(("mars", "2023-01-23 12:00", "active"), ("utc", "2023-01-23 12:00", "active")),
        hours(("mars", MONDAY, "09:00", "10:00"), ("utc", MONDAY, "09:00", "10:00")),
        zones(("mars", "Mars/Olympus_Mons"), ("utc", "UTC")),
        as_of="2023-01-23 15:30",
    )
    assert_rows(result, ("mars", 30, 0.5, 1, 0, 0, 0), ("utc", 0, 1, 1, 0, 0, 0))
    assert result.unknown_timezones == ["mars"]


def test_an_empty_timezone_is_missing_data_chicago_and_counted_unknown() -> None:
    # The reader keeps an empty (or blank) timezone_str as "": the same numbers as no row, but
    # the store is counted among the unknown zones.
    result = run(
        polls(("empty", "2023-01-23 12:00", "active"), ("none", "2023-01-23 12:00", "active")),
        hours(("empty", MONDAY, "09:00", "10:00"), ("none", MONDAY, "09:00", "10:00")),
        zones(("empty", "")),
        as_of="2023-01-23 15:30",
    )
    assert_rows(result, ("empty", 30, 0.5, 1, 0, 0, 0), ("none", 30, 0.5, 1, 0, 0, 0))
    assert result.unknown_timezones == ["empty"]


def _polars_refuses(zone: str) -> bool:
    try:
        pl.select(pl.lit(0, pl.Datetime("us")).dt.replace_time_zone(zone))
    except pl.exceptions.PolarsError:
        return True
    return False


def test_every_zone_python_lists_is_computed_or_counted_unknown() -> None:
    # One store per name zoneinfo lists, open Monday 09:00-10:00 local and active all week: the
    # report completes, each store gets its hour, and a name Polars cannot compute in (e.g.
    # "Factory") is unknown, as a misspelt one.
    names = sorted(zoneinfo.available_timezones())
    result = run(
        polls(*((name, "2023-01-23 00:00", "active") for name in names)),
        hours(*((name, MONDAY, "09:00", "10:00") for name in names)),
        zones(*((name, name) for name in names)),
        as_of="2023-01-24 00:00",
    )
    assert result.rows["uptime_last_week"].to_list() == [1.0] * len(names)
    refused = [name for name in names if _polars_refuses(name)]
    assert "Factory" in refused
    assert result.unknown_timezones == refused


@pytest.mark.parametrize(
    "as_of", ["1969-12-31 23:50", "1970-01-01 00:10", "1970-01-01 01:00", "1970-01-08 00:20"]
)
def test_windows_with_an_edge_near_the_unix_epoch(as_of: str) -> None:
    # Epoch microseconds near 0 once made Int32 literals among Int64 columns. 24x7, one active
    # poll 5 minutes before now, one store with UTC hours every day 00:00-00:00.
    at = instant(as_of)
    result = run(
        polls(("a", at - timedelta(minutes=5), "active"), ("b", at, "inactive")),
        hours(*(("b", day, "00:00", "00:00") for day in range(7))),
        utc("b"),
        as_of=as_of,
    )
    assert_rows(result, ("a", 60, 24, 168, 0, 0, 0), ("b", 0, 0, 0, 60, 24, 168))


def test_chicago_spring_forward_example_of_the_contract() -> None:
    # Sunday 01:30-02:45 Chicago on 2023-03-12: 02:45 does not exist, so it closes at the jump:
    # 07:30-08:00 UTC, 30 min. now 08:30 UTC, active. Hour [07:30, 08:30): 30 min; day 0.5 h.
    # Week [Mar 5 08:30, now) adds the tail of Mar 5 (CST, 07:30-08:45 UTC): 15 min -> 0.75 h.
    result = run(
        polls(("s", "2023-03-12 06:00", "active")),
        hours(("s", SUNDAY, "01:30", "02:45")),
        zones(("s", "America/Chicago")),
        as_of="2023-03-12 08:30",
    )
    assert_rows(result, ("s", 30, 0.5, 0.75, 0, 0, 0))


def test_chicago_fall_back_example_of_the_contract() -> None:
    # Sunday 01:30-02:45 Chicago on 2023-11-05: 01:30 is its first occurrence (CDT, 06:30 UTC),
    # 02:45 is CST (08:45 UTC): 2 h 15 min. now 09:00 UTC, inactive.
    # Hour [08:00, 09:00): 45 min. Day 2.25 h. Week: Oct 29's opening (06:30-07:45 UTC) is before
    # the window start Oct 29 09:00.
    result = run(
        polls(("s", "2023-11-05 06:00", "inactive")),
        hours(("s", SUNDAY, "01:30", "02:45")),
        zones(("s", "America/Chicago")),
        as_of="2023-11-05 09:00",
    )
    assert_rows(result, ("s", 0, 0, 0, 45, 2.25, 2.25))


def test_berlin_spring_forward_times_in_the_gap_mean_the_jump() -> None:
    # 2023-03-26 Berlin jumps 02:00 CET -> 03:00 CEST at 01:00 UTC. now 02:00 UTC, active.
    # "start": Sunday 02:30-04:00: opens at the jump 01:00 UTC (not 00:30 or 01:30), closes 04:00
    #   CEST = 02:00 UTC: hour 60 min, day 1 h; week adds Mar 19 02:30-04:00 CET = 01:30-03:00
    #   UTC, of which 02:00-03:00 is inside [Mar 19 02:00, now): 2 h.
    # "end": Sunday 00:00-02:30: Sat 23:00 UTC -> the jump 01:00 UTC: hour 0, day 2 h, week 2 h
    #   (Mar 19's opening, Mar 18 23:00 - Mar 19 01:30 UTC, ended before the week started).
    result = run(
        polls(("end", "2023-03-25 12:00", "active"), ("start", "2023-03-25 12:00", "active")),
        hours(("start", SUNDAY, "02:30", "04:00"), ("end", SUNDAY, "00:00", "02:30")),
        zones(("start", "Europe/Berlin"), ("end", "Europe/Berlin")),
        as_of="2023-03-26 02:00",
    )
    assert_rows(result, ("end", 0, 2, 2, 0, 0, 0), ("start", 60, 1, 2, 0, 0, 0))


def test_berlin_fall_back_ambiguous_times_mean_the_first_occurrence() -> None:
    # 2023-10-29 Berlin goes back 03:00 CEST -> 02:00 CET at 01:00 UTC; 02:00-03:00 happens twice.
    # now 04:00 UTC, active.
    # "start": Sunday 02:30-05:00: 02:30 CEST = 00:30 UTC, 05:00 CET = 04:00 UTC: 3.5 h; hour 60.
    #   Oct 22's opening (00:30-03:00 UTC) is before the week start Oct 22 04:00.
    # "end": Sunday 00:00-02:30: Sat 22:00 UTC -> 02:30 CEST = 00:30 UTC: 2.5 h; hour 0.
    result = run(
        polls(("end", "2023-10-28 12:00", "active"), ("start", "2023-10-28 12:00", "active")),
        hours(("start", SUNDAY, "02:30", "05:00"), ("end", SUNDAY, "00:00", "02:30")),
        zones(("start", "Europe/Berlin"), ("end", "Europe/Berlin")),
        as_of="2023-10-29 04:00",
    )
    assert_rows(result, ("end", 0, 2.5, 2.5, 0, 0, 0), ("start", 60, 3.5, 3.5, 0, 0, 0))


def test_sydney_spring_forward_start_in_the_gap_means_the_jump() -> None:
    # 2023-10-01 Sydney jumps 02:00 AEST -> 03:00 AEDT at Sep 30 16:00 UTC.
    # Sunday 02:15-04:00: opens at the jump (16:00 UTC), closes 04:00 AEDT = 17:00 UTC: 1 h.
    # now Sep 30 17:00 UTC, active: hour 60 min, day 1 h. Week [Sep 23 17:00, now) adds the tail
    # of Sep 24's opening (AEST: Sep 23 16:15-18:00 UTC): 1 h -> 2 h.
    result = run(
        polls(("s", "2023-09-30 12:00", "active")),
        hours(("s", SUNDAY, "02:15", "04:00")),
        zones(("s", "Australia/Sydney")),
        as_of="2023-09-30 17:00",
    )
    assert_rows(result, ("s", 60, 1, 2, 0, 0, 0))


def test_sydney_fall_back_ambiguous_start_means_the_first_occurrence() -> None:
    # 2023-04-02 Sydney goes back 03:00 AEDT -> 02:00 AEST at Apr 1 16:00 UTC.
    # Sunday 02:30-04:00: 02:30 AEDT = Apr 1 15:30 UTC, 04:00 AEST = 18:00 UTC: 2.5 h.
    # now Apr 1 18:00 UTC, inactive: hour 60, day 2.5 h; Mar 26's opening (Mar 25 15:30-17:00
    # UTC) is before the week start Mar 25 18:00.
    result = run(
        polls(("s", "2023-04-01 12:00", "inactive")),
        hours(("s", SUNDAY, "02:30", "04:00")),
        zones(("s", "Australia/Sydney")),
        as_of="2023-04-01 18:00",
    )
    assert_rows(result, ("s", 0, 0, 0, 60, 2.5, 2.5))


def test_whole_days_across_a_dst_change_are_one_continuous_opening() -> None:
    # Every day 00:00-00:00 in Chicago, over the 2023-03-12 spring forward (a 23 h local day):
    # no gap and no overlap, so every elapsed hour is business: 60 / 24 / 168, all inactive.
    result = run(
        polls(("s", "2023-03-10 00:00", "inactive")),
        hours(*(("s", day, "00:00", "00:00") for day in range(7))),
        zones(("s", "America/Chicago")),
        as_of="2023-03-14 12:00",
    )
    assert_rows(result, ("s", 0, 0, 0, 60, 24, 168))


def test_polls_outside_business_hours_still_shape_the_step_function() -> None:
    # Monday 09:00-12:00 UTC; polls 07:00 inactive and 13:00 active, both while closed. Their
    # midpoint 10:00 is inside: down 09:00-10:00 = 1 h, up 10:00-12:00 = 2 h. now = 13:00.
    result = run(
        polls(("s", "2023-01-23 07:00", "inactive"), ("s", "2023-01-23 13:00", "active")),
        hours(("s", MONDAY, "09:00", "12:00")),
        utc("s"),
    )
    assert_rows(result, ("s", 0, 2, 2, 0, 1, 1))


def test_first_status_holds_before_the_first_poll_and_last_after_the_last() -> None:
    # Monday 09:00-17:00 UTC; polls 11:00 inactive, 12:00 active (midpoint 11:30); now 17:00.
    # Down 09:00-11:30 = 2.5 h, up 11:30-17:00 = 5.5 h; hour [16:00, 17:00) up.
    result = run(
        polls(("s", "2023-01-23 11:00", "inactive"), ("s", "2023-01-23 12:00", "active")),
        hours(("s", MONDAY, "09:00", "17:00")),
        utc("s"),
        as_of="2023-01-23 17:00",
    )
    assert_rows(result, ("s", 60, 5.5, 5.5, 0, 2.5, 2.5))


def test_conflicting_polls_at_one_instant_inactive_wins() -> None:
    # 24x7. At 10:00 both statuses (in either order) count as inactive; 11:00 active = now.
    # Midpoint 10:30: hour 30/30 min; day up 0.5 h, down 23.5 h; week up 0.5 h, down 167.5 h.
    # "single": only conflicting polls, so inactive all the time.
    result = run(
        polls(
            ("a", "2023-01-23 10:00", "active"),
            ("a", "2023-01-23 10:00", "inactive"),
            ("a", "2023-01-23 11:00", "active"),
            ("b", "2023-01-23 10:00", "inactive"),
            ("b", "2023-01-23 10:00", "active"),
            ("b", "2023-01-23 11:00", "active"),
            ("single", "2023-01-23 11:00", "active"),
            ("single", "2023-01-23 11:00", "inactive"),
            ("single", "2023-01-23 11:00", "active"),
        ),
        zone_frame=zones(("a", "UTC"), ("b", "UTC"), ("single", "UTC")),
    )
    assert_rows(
        result,
        ("a", 30, 0.5, 0.5, 30, 23.5, 167.5),
        ("b", 30, 0.5, 0.5, 30, 23.5, 167.5),
        ("single", 0, 0, 0, 60, 24, 168),
    )


def test_stores_without_polls_at_or_before_now_are_not_reported() -> None:
    # "hours-only" has hours and a timezone but no polls; "late" polls only after as_of.
    result = run(
        polls(("late", "2023-01-23 12:30", "active"), ("s", "2023-01-23 11:00", "active")),
        hours(("hours-only", MONDAY, "09:00", "17:00"), ("late", MONDAY, "09:00", "17:00")),
        zones(("hours-only", "UTC"), ("late", "UTC"), ("s", "UTC")),
        as_of="2023-01-23 12:00",
    )
    assert_rows(result, ("s", 60, 24, 168, 0, 0, 0))
    assert result.ignored_polls == 1


def test_only_polls_after_as_of_give_an_empty_report() -> None:
    result = run(
        polls(("s", "2023-01-23 12:30", "active")),
        hours(("s", MONDAY, "09:00", "17:00")),
        utc("s"),
        as_of="2023-01-23 12:00",
    )
    assert_frame_equal(result.rows, pl.DataFrame(schema=REPORT))
    assert result.now == instant("2023-01-23 12:00")
    assert result.ignored_polls == 1


def test_rows_are_sorted_by_store_id_as_text() -> None:
    ids = ["9", "100", "2", "10"]
    result = run(polls(*((store, "2023-01-23 11:00", "active") for store in ids)))
    assert result.rows["store_id"].to_list() == ["10", "100", "2", "9"]


def test_long_numeric_ids_are_kept_verbatim() -> None:
    ids = ["9223372036854775807", "1234567890123456789", "0000000000000000042"]
    result = run(polls(*((store, "2023-01-23 11:00", "active") for store in ids)))
    assert result.rows["store_id"].to_list() == sorted(ids)
    assert result.rows.schema["store_id"] == pl.String


def test_columns_order_units_and_rounding() -> None:
    # 24x7; polls 10:00:00 active, 10:00:20 inactive (= now): midpoint 10:00:10.
    # Hour [09:00:20, 10:00:20): up 59 min 50 s = 59.8333 -> 59.83 min, down 10 s = 0.1667 ->
    # 0.17 min. Day: up 24 h - 10 s = 23.9972 -> 24.0 h, down 0.0028 -> 0.0 h. Week likewise.
    result = run(
        polls(("s", "2023-01-23 10:00:00", "active"), ("s", "2023-01-23 10:00:20", "inactive")),
        zone_frame=utc("s"),
    )
    assert result.rows.schema == REPORT
    assert result.rows.columns == [
        "store_id",
        "uptime_last_hour",
        "uptime_last_day",
        "uptime_last_week",
        "downtime_last_hour",
        "downtime_last_day",
        "downtime_last_week",
    ]
    assert_rows(result, ("s", 59.83, 24.0, 168.0, 0.17, 0.0, 0.0))


def test_rounded_values_are_the_floats_nearest_two_decimals() -> None:
    # 59.98 must be the float written 59.98, not 5998 * 0.01 = 59.980000000000004, whatever the
    # other stores in the frame (a CSV prints the repr).
    # "a", 24x7: polls 10:59:57.6 inactive, 11:00 active (= now): midpoint 10:59:58.8. Hour: down
    #   59 min 58.8 s = 59.98 min, up 1.2 s = 0.02 min; day/week: 24 / 168 h down, 0 up.
    # "b", Monday 10:00-10:34 UTC, active: 34 min in every window; 34/60 h = 0.5667 -> 0.57.
    result = run(
        polls(
            ("a", "2023-01-23 10:59:57.6", "inactive"),
            ("a", "2023-01-23 11:00", "active"),
            ("b", "2023-01-23 10:00", "active"),
        ),
        hours(("b", MONDAY, "10:00", "10:34")),
        zones(("a", "UTC"), ("b", "UTC")),
    )
    assert_rows(result, ("a", 0.02, 0.0, 0.0, 59.98, 24.0, 168.0), ("b", 34, 0.57, 0.57, 0, 0, 0))
    assert [[repr(value) for value in row[1:]] for row in result.rows.rows()] == [
        ["0.02", "0.0", "0.0", "59.98", "24.0", "168.0"],
        ["34.0", "0.57", "0.57", "0.0", "0.0", "0.0"],
    ]


def test_uptime_plus_downtime_is_business_time() -> None:
    # Monday 09:00-12:00 and 13:00-14:30 UTC; now 14:00. Polls 09:00:07 up, 10:00:00 down,
    # 11:11:11 up, 13:20:00 down; midpoints 09:30:03.5, 10:35:35.5, 12:15:35.5.
    # Up: 09:00-09:30:03.5 (1803.5 s) + 10:35:35.5-12:00 (5064.5 s) = 6868 s = 1.9078 -> 1.91 h.
    # Down: 09:30:03.5-10:35:35.5 (3932 s) + 13:00-14:00 (3600 s) = 7532 s = 2.0922 -> 2.09 h.
    # Business time by window: hour 60 min, day 4 h = 6868 s + 7532 s. The week also holds
    # Jan 16 14:00-14:30 (active, the first status): up 8668 s = 2.4078 -> 2.41 h, 4.5 h in all.
    result = run(
        polls(
            ("s", "2023-01-23 09:00:07", "active"),
            ("s", "2023-01-23 10:00:00", "inactive"),
            ("s", "2023-01-23 11:11:11", "active"),
            ("s", "2023-01-23 13:20:00", "inactive"),
        ),
        hours(("s", MONDAY, "09:00", "12:00"), ("s", MONDAY, "13:00", "14:30")),
        utc("s"),
        as_of="2023-01-23 14:00",
    )
    assert_rows(result, ("s", 0, 1.91, 2.41, 60, 2.09, 2.09))
    row = result.rows.row(0, named=True)
    for window, business in [("hour", 60), ("day", 4), ("week", 4.5)]:
        total = row[f"uptime_last_{window}"] + row[f"downtime_last_{window}"]
        assert total == pytest.approx(business, abs=1e-9)


@pytest.mark.parametrize("as_of", [None, datetime.fromisoformat("2023-01-23T12:00:00+00:00")])
def test_empty_polls_give_an_empty_report(as_of: datetime | None) -> None:
    result = compute_report(polls(), hours(("s", MONDAY, "09:00", "17:00")), utc("s"), as_of=as_of)
    assert_frame_equal(result.rows, pl.DataFrame(schema=REPORT))
    assert result.ignored_polls == 0
    assert result.unknown_timezones == []
    assert result.incidents is not None
    assert result.incidents.is_empty()
    assert result.incidents.schema == INCIDENTS
    assert result.daily is not None
    assert result.daily.is_empty()
    assert result.daily.schema == DAILY


# Incidents


def test_incidents_worked_example_of_the_contract() -> None:
    # The worked example: inactive from the midpoint 10:44:30 to now, 12:00: one incident of
    # 75.5 minutes. Daily: every date of the week is listed, Monday Jan 23 holds it all.
    result = run(
        polls(("s", "2023-01-23 10:14", "active"), ("s", "2023-01-23 11:15", "inactive")),
        hours(("s", MONDAY, "09:00", "12:00")),
        utc("s"),
        as_of="2023-01-23 12:00",
    )
    assert_incidents(result, ("s", "2023-01-23 10:44:30", "2023-01-23 12:00", 75.5))
    assert_daily(
        result,
        *(("s", f"2023-01-{day}", 0, 0) for day in range(16, 23)),
        ("s", "2023-01-23", 1.74, 1.26),
    )


def test_inactive_polls_in_a_row_are_one_incident_and_an_active_one_splits_it() -> None:
    # 24x7 UTC. "a": 10:00 up, 11:00 down, 12:00 down, 13:00 up (= now): down 10:30-12:30.
    # "b": the same with 11:30 up: down 10:30-11:15 and 11:45-12:30.
    result = run(
        polls(
            ("a", "2023-01-23 10:00", "active"),
            ("a", "2023-01-23 11:00", "inactive"),
            ("a", "2023-01-23 12:00", "inactive"),
            ("a", "2023-01-23 13:00", "active"),
            ("b", "2023-01-23 10:00", "active"),
            ("b", "2023-01-23 11:00", "inactive"),
            ("b", "2023-01-23 11:30", "active"),
            ("b", "2023-01-23 12:00", "inactive"),
            ("b", "2023-01-23 13:00", "active"),
        ),
        zone_frame=zones(("a", "UTC"), ("b", "UTC")),
    )
    assert_incidents(
        result,
        ("a", "2023-01-23 10:30", "2023-01-23 12:30", 120),
        ("b", "2023-01-23 10:30", "2023-01-23 11:15", 45),
        ("b", "2023-01-23 11:45", "2023-01-23 12:30", 45),
    )


def test_business_hours_through_midnight_are_one_incident() -> None:
    # Always inactive, UTC, now Tue Jan 24 03:00. "overnight": Monday 22:00-02:00, one row.
    # "touching": Monday 20:00-23:59:59 (midnight) and Tuesday 00:00-03:00, two rows that touch.
    # Last week's openings ended by the week's start, Jan 17 03:00.
    result = run(
        polls(
            ("overnight", "2023-01-23 12:00", "inactive"),
            ("touching", "2023-01-23 12:00", "inactive"),
        ),
        hours(
            ("overnight", MONDAY, "22:00", "02:00"),
            ("touching", MONDAY, "20:00", "23:59:59"),
            ("touching", TUESDAY, "00:00", "03:00"),
        ),
        zones(("overnight", "UTC"), ("touching", "UTC")),
        as_of="2023-01-24 03:00",
    )
    assert_incidents(
        result,
        ("overnight", "2023-01-23 22:00", "2023-01-24 02:00", 240),
        ("touching", "2023-01-23 20:00", "2023-01-24 03:00", 420),
    )


def test_leaving_business_hours_ends_an_incident_and_reopening_starts_a_new_one() -> None:
    # Monday 09:00-11:00 and 17:00-20:00 UTC, inactive all day, now Mon 21:00: two incidents.
    result = run(
        polls(("s", "2023-01-23 10:00", "inactive")),
        hours(("s", MONDAY, "09:00", "11:00"), ("s", MONDAY, "17:00", "20:00")),
        utc("s"),
        as_of="2023-01-23 21:00",
    )
    assert_incidents(
        result,
        ("s", "2023-01-23 09:00", "2023-01-23 11:00", 120),
        ("s", "2023-01-23 17:00", "2023-01-23 20:00", 180),
    )


def test_incidents_are_clipped_to_the_week_at_both_ends() -> None:
    # 24x7 UTC, now Mon Jan 23 12:00, week [Jan 16 12:00, now). Polls Jan 16 10:00 down (before
    # the week), Jan 18 12:00 up: down until the midpoint Jan 17 11:00, from the week's start:
    # 23 h. Jan 22 11:00 up, Jan 23 11:00 down: down from the midpoint Jan 22 23:00 until now,
    # still going on: 13 h. Down 36 h in the week, 13 h in the day, the whole last hour.
    result = run(
        polls(
            ("s", "2023-01-16 10:00", "inactive"),
            ("s", "2023-01-18 12:00", "active"),
            ("s", "2023-01-22 11:00", "active"),
            ("s", "2023-01-23 11:00", "inactive"),
        ),
        zone_frame=utc("s"),
        as_of="2023-01-23 12:00",
    )
    assert_incidents(
        result,
        ("s", "2023-01-16 12:00", "2023-01-17 11:00", 1380),
        ("s", "2023-01-22 23:00", "2023-01-23 12:00", 780),
    )
    assert_rows(result, ("s", 0, 11, 132, 60, 13, 36))


def test_incident_ends_are_rounded_down_to_the_microsecond_and_minutes_half_up() -> None:
    # 24x7 UTC. Polls 10:00:00 up, 10:00:00.000001 down, 10:00:00.6 up: midpoints 10:00:00.0000005
    # and 10:00:00.3000005, written 10:00:00 and 10:00:00.300000: 0.3 s = 0.005 min -> 0.01 (half
    # up, not to even). Then 10:01:00.000001 up, 10:01:00.000003 (= now) down: from the midpoint
    # 10:01:00.000002 until now, 1 µs -> 0.00.
    result = run(
        polls(
            ("s", "2023-01-23 10:00:00", "active"),
            ("s", "2023-01-23 10:00:00.000001", "inactive"),
            ("s", "2023-01-23 10:00:00.6", "active"),
            ("s", "2023-01-23 10:01:00.000001", "active"),
            ("s", "2023-01-23 10:01:00.000003", "inactive"),
        ),
        zone_frame=utc("s"),
    )
    assert_incidents(
        result,
        ("s", "2023-01-23 10:00:00", "2023-01-23 10:00:00.3", 0.01),
        ("s", "2023-01-23 10:01:00.000002", "2023-01-23 10:01:00.000003", 0),
    )


def test_a_store_without_downtime_has_no_incident_rows_but_its_days() -> None:
    # "up" is always active. "closed" is inactive only before its Monday 09:00-12:00 opening:
    # polls 08:00 down, 09:00 up (midpoint 08:30). now Mon 12:00; Jan 16's opening ended at the
    # week's start. Incidents are sorted by store_id as text: "10" before "9".
    result = run(
        polls(
            ("up", "2023-01-23 09:00", "active"),
            ("closed", "2023-01-23 08:00", "inactive"),
            ("closed", "2023-01-23 09:00", "active"),
            ("9", "2023-01-23 11:00", "inactive"),
            ("10", "2023-01-23 11:00", "inactive"),
        ),
        hours(("closed", MONDAY, "09:00", "12:00")),
        zones(("up", "UTC"), ("closed", "UTC"), ("9", "UTC"), ("10", "UTC")),
        as_of="2023-01-23 12:00",
    )
    assert_incidents(
        result,
        ("10", "2023-01-16 12:00", "2023-01-23 12:00", 10080),
        ("9", "2023-01-16 12:00", "2023-01-23 12:00", 10080),
    )
    assert result.daily is not None
    assert result.daily.group_by("store_id").len().sort("store_id").rows() == [
        ("10", 8),
        ("9", 8),
        ("closed", 8),
        ("up", 8),
    ]


def test_details_are_not_computed_when_not_asked_for() -> None:
    result = compute_report(
        polls(("s", "2023-01-23 11:00", "inactive")), NO_HOURS, NO_ZONES, incidents_and_daily=False
    )
    assert result.incidents is None
    assert result.daily is None
    assert_rows(result, ("s", 0, 0, 0, 60, 24, 168))


# Daily figures


def test_daily_figures_are_per_local_date_of_the_store() -> None:
    # Chicago (UTC-6), Monday 22:00-02:00 local = Tue 04:00-08:00 UTC. Polls Tue 05:00 UTC up,
    # 07:00 down: midpoint 06:00 UTC, local midnight. now Tue Jan 24 12:00 UTC (06:00 local),
    # week from Jan 17 06:00 local: dates Jan 17..24. Monday Jan 23 has 22:00-24:00 up, Tuesday
    # Jan 24 00:00-02:00 down; Jan 16's opening closed Jan 17 02:00 local, before the week.
    result = run(
        polls(("s", "2023-01-24 05:00", "active"), ("s", "2023-01-24 07:00", "inactive")),
        hours(("s", MONDAY, "22:00", "02:00")),
        zones(("s", "America/Chicago")),
        as_of="2023-01-24 12:00",
    )
    assert_daily(
        result,
        *(("s", f"2023-01-{day}", 0, 0) for day in range(17, 23)),
        ("s", "2023-01-23", 2, 0),
        ("s", "2023-01-24", 0, 2),
    )
    assert_incidents(result, ("s", "2023-01-24 06:00", "2023-01-24 08:00", 120))


def test_a_week_ending_at_local_midnight_has_seven_dates() -> None:
    # 24x7 UTC, now Mon Jan 23 00:00: the week is exactly Jan 16..22; Jan 23 is not touched.
    result = run(
        polls(("s", "2023-01-20 00:00", "active")), zone_frame=utc("s"), as_of="2023-01-23 00:00"
    )
    assert_daily(result, *(("s", f"2023-01-{day}", 24, 0) for day in range(16, 23)))


def test_chicago_spring_forward_day_has_23_hours_and_the_week_nine_dates() -> None:
    # 24x7 Chicago, active. 2023-03-12 jumps 02:00 CST -> 03:00 CDT. now Mar 14 05:30 UTC =
    # 00:30 CDT; the week starts Mar 7 05:30 UTC = Mar 6 23:30 CST: half an hour on Mar 6 and
    # on Mar 14, a 23-hour Mar 12: nine dates, 168 h.
    result = run(
        polls(("s", "2023-03-10 00:00", "active")),
        zone_frame=zones(("s", "America/Chicago")),
        as_of="2023-03-14 05:30",
    )
    assert_daily(
        result,
        ("s", "2023-03-06", 0.5, 0),
        *(("s", f"2023-03-{day:02}", 24, 0) for day in range(7, 12)),
        ("s", "2023-03-12", 23, 0),
        ("s", "2023-03-13", 24, 0),
        ("s", "2023-03-14", 0.5, 0),
    )


def test_berlin_spring_forward_day_has_23_hours_and_the_week_nine_dates() -> None:
    # 24x7 Berlin, inactive. 2023-03-26 jumps 02:00 CET -> 03:00 CEST (01:00 UTC). now Mar 27
    # 22:30 UTC = Mar 28 00:30 CEST; the week starts Mar 20 22:30 UTC = 23:30 CET.
    result = run(
        polls(("s", "2023-03-24 00:00", "inactive")),
        zone_frame=zones(("s", "Europe/Berlin")),
        as_of="2023-03-27 22:30",
    )
    assert_daily(
        result,
        ("s", "2023-03-20", 0, 0.5),
        *(("s", f"2023-03-{day}", 0, 24) for day in range(21, 26)),
        ("s", "2023-03-26", 0, 23),
        ("s", "2023-03-27", 0, 24),
        ("s", "2023-03-28", 0, 0.5),
    )
    assert_incidents(result, ("s", "2023-03-20 22:30", "2023-03-27 22:30", 10080))


def test_sydney_fall_back_day_has_25_hours_and_the_week_seven_dates() -> None:
    # 24x7 Sydney, active. 2023-04-02 goes back 03:00 AEDT -> 02:00 AEST (Apr 1 16:00 UTC).
    # now Apr 3 13:30 UTC = 23:30 AEST; the week starts Mar 27 13:30 UTC = Mar 28 00:30 AEDT.
    result = run(
        polls(("s", "2023-03-30 00:00", "active")),
        zone_frame=zones(("s", "Australia/Sydney")),
        as_of="2023-04-03 13:30",
    )
    assert_daily(
        result,
        ("s", "2023-03-28", 23.5, 0),
        *(("s", f"2023-{day}", 24, 0) for day in ["03-29", "03-30", "03-31", "04-01"]),
        ("s", "2023-04-02", 25, 0),
        ("s", "2023-04-03", 23.5, 0),
    )


def test_a_date_whose_midnight_is_skipped_starts_at_the_jump() -> None:
    # Santiago jumps from 2023-09-03 00:00 (-04) to 01:00 (-03), at 04:00 UTC: Sep 3 starts at
    # the jump and has 23 hours, Sep 2 keeps its 24. now Sep 5 03:00 UTC = Sep 5 00:00 local,
    # the week starts Aug 29 03:00 UTC = Aug 28 23:00 local. 24x7, active.
    result = run(
        polls(("s", "2023-09-01 00:00", "active")),
        zone_frame=zones(("s", "America/Santiago")),
        as_of="2023-09-05 03:00",
    )
    assert_daily(
        result,
        ("s", "2023-08-28", 1, 0),
        *(("s", f"2023-{day}", 24, 0) for day in ["08-29", "08-30", "08-31", "09-01", "09-02"]),
        ("s", "2023-09-03", 23, 0),
        ("s", "2023-09-04", 24, 0),
    )
