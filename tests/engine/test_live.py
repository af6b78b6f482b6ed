"""One test per rule of the contract's live section, on tiny literal frames with hand-worked
numbers. Stores are in UTC; 2023-01-23 is a Monday. A store without hours rows is open 24x7."""

from datetime import datetime

import polars as pl
from polars.testing import assert_frame_equal

from store_monitor.engine import LiveEvaluation, evaluate_live
from store_monitor.frames import DOWN_NOW, INCIDENTS, INCIDENTS_OPENED, LIVE_STATE

from .frames import hours, instant, polls, zones

MONDAY = 0
NO_HOURS = hours()
ZONES = zones(("s", "UTC"), ("t", "UTC"))
NO_STATE = LIVE_STATE.to_frame()


def evaluate(
    poll_frame: pl.DataFrame,
    state: pl.DataFrame = NO_STATE,
    hour_frame: pl.DataFrame = NO_HOURS,
    now: str | None = None,
) -> LiveEvaluation:
    """At `now`, by default the latest poll (N)."""
    at = poll_frame["timestamp_utc"].max() if now is None else instant(now)
    assert isinstance(at, datetime)
    return evaluate_live(poll_frame, hour_frame, ZONES, state, now=at)


def at(text: str | None) -> datetime | None:
    return None if text is None else instant(text)


def assert_down_now(result: LiveEvaluation, *rows: tuple[str, str, float, str]) -> None:
    """`(store_id, since, minutes, latest_poll_at)`."""
    expected = [(store, at(since), minutes, at(latest)) for store, since, minutes, latest in rows]
    assert_frame_equal(
        result.down_now, pl.DataFrame(expected, schema=DOWN_NOW, orient="row"), check_exact=True
    )


def assert_opened(result: LiveEvaluation, *rows: tuple[str, str]) -> None:
    expected = [(store, at(started)) for store, started in rows]
    assert_frame_equal(result.opened, pl.DataFrame(expected, schema=INCIDENTS_OPENED, orient="row"))


def assert_closed(result: LiveEvaluation, *rows: tuple[str, str, str, float]) -> None:
    """`(store_id, started_at, ended_at, minutes)`, as the incidents CSV writes them."""
    expected = [(store, at(start), at(end), minutes) for store, start, end, minutes in rows]
    assert_frame_equal(
        result.closed, pl.DataFrame(expected, schema=INCIDENTS, orient="row"), check_exact=True
    )


def assert_state(result: LiveEvaluation, *rows: tuple[str, str, str | None]) -> None:
    """`(store_id, threshold, announced_started_at)`."""
    expected = [(store, at(threshold), at(started)) for store, threshold, started in rows]
    assert_frame_equal(result.state, pl.DataFrame(expected, schema=LIVE_STATE, orient="row"))


def test_down_now_is_an_ongoing_incident_since_its_start() -> None:
    # s: open Monday 09:00-12:00, polls 10:14 active and 11:15 inactive (the contract's worked
    # example): inactive from the midpoint 10:44:30. t's poll makes N 11:30: s is down since
    # 10:44:30, 45.5 minutes at N. t's poll after `now` and the state of store x are ignored.
    result = evaluate(
        polls(
            ("s", "2023-01-23 10:14", "active"),
            ("s", "2023-01-23 11:15", "inactive"),
            ("t", "2023-01-23 11:30", "active"),
            ("t", "2023-01-23 11:40", "inactive"),
        ),
        state=pl.DataFrame(
            [("x", instant("2023-01-23 11:00"), None)], schema=LIVE_STATE, orient="row"
        ),
        hour_frame=hours(("s", MONDAY, "09:00", "12:00")),
        now="2023-01-23 11:30",
    )
    assert_down_now(result, ("s", "2023-01-23 10:44:30", 45.5, "2023-01-23 11:15"))
    assert_opened(result, ("s", "2023-01-23 10:44:30"))
    assert_closed(result)
    assert_state(
        result,
        ("s", "2023-01-23 11:15", "2023-01-23 10:44:30"),
        ("t", "2023-01-23 11:30", None),
    )


def test_inactive_outside_business_hours_is_not_down_and_closing_waits_for_the_latest_poll() -> (
    None
):
    # s closes at 12:00 while inactive; N = 12:30 (t). Not down now. Its incident ends at the
    # closing, after s's latest poll (11:15): a poll of s before 12:00 could still end it earlier,
    # so nothing is announced yet.
    hour_frame = hours(("s", MONDAY, "09:00", "12:00"))
    history = [
        ("s", "2023-01-23 10:14", "active"),
        ("s", "2023-01-23 11:15", "inactive"),
        ("t", "2023-01-23 12:30", "active"),
    ]
    first = evaluate(polls(*history), hour_frame=hour_frame)
    assert_down_now(first)
    assert_opened(first)
    assert_closed(first)
    assert_state(first, ("s", "2023-01-23 11:30", None), ("t", "2023-01-23 12:30", None))

    # s polls at 13:00: the midpoint 12:07:30 is after the closing, so the incident ends at 12:00
    # <= L. It was never announced opened, and is announced closed.
    later = evaluate(polls(*history, ("s", "2023-01-23 13:00", "active")), first.state, hour_frame)
    assert_opened(later)
    assert_closed(later, ("s", "2023-01-23 10:44:30", "2023-01-23 12:00", 75.5))
    assert_state(later, ("s", "2023-01-23 13:00", None), ("t", "2023-01-23 12:30", None))


def test_an_incident_that_reaches_a_closing_at_now_is_not_ongoing() -> None:
    # s closes at 12:00 = N, its own inactive poll: the incident reaches N, but N is not in
    # business hours. It ended at 12:00 <= L, so it is announced closed at once.
    result = evaluate(
        polls(
            ("s", "2023-01-23 10:14", "active"),
            ("s", "2023-01-23 11:15", "inactive"),
            ("s", "2023-01-23 12:00", "inactive"),
        ),
        hour_frame=hours(("s", MONDAY, "09:00", "12:00")),
    )
    assert_down_now(result)
    assert_opened(result)
    assert_closed(result, ("s", "2023-01-23 10:44:30", "2023-01-23 12:00", 75.5))


def test_opened_waits_until_the_latest_poll_reaches_the_start() -> None:
    # s opens at 12:00, inactive at its polls 10:00 and 11:00; N = 12:30 (t). It is down since
    # 12:00, but a poll of s before 12:00 could still move that start (an active one at 11:50
    # would make it active all along): not announced opened yet.
    hour_frame = hours(("s", MONDAY, "12:00", "18:00"))
    history = [
        ("s", "2023-01-23 10:00", "inactive"),
        ("s", "2023-01-23 11:00", "inactive"),
        ("t", "2023-01-23 12:30", "active"),
    ]
    first = evaluate(polls(*history), hour_frame=hour_frame)
    assert_down_now(first, ("s", "2023-01-23 12:00", 30, "2023-01-23 11:00"))
    assert_opened(first)
    assert_state(first, ("s", "2023-01-23 11:30", None), ("t", "2023-01-23 12:30", None))

    # s polls inactive at 12:45 >= 12:00: now announced opened, once.
    later = evaluate(
        polls(*history, ("s", "2023-01-23 12:45", "inactive"), ("t", "2023-01-23 13:00", "active")),
        first.state,
        hour_frame,
    )
    assert_down_now(later, ("s", "2023-01-23 12:00", 60, "2023-01-23 12:45"))
    assert_opened(later, ("s", "2023-01-23 12:00"))
    assert_state(
        later,
        ("s", "2023-01-23 12:45", "2023-01-23 12:00"),
        ("t", "2023-01-23 13:00", None),
    )


def test_an_incident_is_opened_once_and_closed_once() -> None:
    rows = [("s", "2023-01-23 10:00", "active"), ("s", "2023-01-23 10:30", "inactive")]
    opened = evaluate(polls(*rows))
    assert_opened(opened, ("s", "2023-01-23 10:15"))
    assert_state(opened, ("s", "2023-01-23 10:30", "2023-01-23 10:15"))

    rows.append(("s", "2023-01-23 11:00", "inactive"))
    still_down = evaluate(polls(*rows), opened.state)
    assert_down_now(still_down, ("s", "2023-01-23 10:15", 45, "2023-01-23 11:00"))
    assert_opened(still_down)
    assert_closed(still_down)

    rows.append(("s", "2023-01-23 11:30", "active"))
    closed = evaluate(polls(*rows), still_down.state)
    assert_down_now(closed)
    assert_opened(closed)
    assert_closed(closed, ("s", "2023-01-23 10:15", "2023-01-23 11:15", 60))
    assert_state(closed, ("s", "2023-01-23 11:30", None))

    rows.append(("s", "2023-01-23 12:00", "active"))
    after = evaluate(polls(*rows), closed.state)
    assert_opened(after)
    assert_closed(after)


def test_an_incident_between_two_evaluations_is_announced_closed_though_never_opened() -> None:
    rows = [("s", "2023-01-23 10:00", "active")]
    first = evaluate(polls(*rows))
    rows += [("s", "2023-01-23 10:20", "inactive"), ("s", "2023-01-23 10:40", "active")]
    result = evaluate(polls(*rows), first.state)
    assert_opened(result)
    assert_closed(result, ("s", "2023-01-23 10:10", "2023-01-23 10:30", 20))


def test_loading_a_history_announces_only_incidents_that_ended_in_its_last_hour() -> None:
    # s polls every hour from 00:00 to 12:00, inactive at 03:00 and 11:00: incidents 02:30-03:30
    # and 10:30-11:30. At its first evaluation (N = 12:00) the threshold is 11:00: only the second.
    # t's polls stopped at 08:00: it keeps the threshold N - 1 h, later than its latest poll.
    inactive = {3, 11}
    result = evaluate(
        polls(
            *(
                ("s", f"2023-01-23 {hour:02}:00", "inactive" if hour in inactive else "active")
                for hour in range(13)
            ),
            ("t", "2023-01-23 07:00", "active"),
            ("t", "2023-01-23 08:00", "inactive"),
        )
    )
    assert_closed(result, ("s", "2023-01-23 10:30", "2023-01-23 11:30", 60))
    # t is down since the midpoint 07:30, and that is announced: it is going on now.
    assert_opened(result, ("t", "2023-01-23 07:30"))
    assert_state(
        result,
        ("s", "2023-01-23 12:00", None),
        ("t", "2023-01-23 11:00", "2023-01-23 07:30"),
    )


def test_an_ongoing_incident_keeps_its_announced_start_beyond_the_week() -> None:
    rows = [("s", "2023-01-16 10:00", "active"), ("s", "2023-01-16 11:00", "inactive")]
    first = evaluate(polls(*rows))
    assert_opened(first, ("s", "2023-01-16 10:30"))

    # Eight days later, still inactive: the report clips the incident to start at N - 7 d
    # (2023-01-17 11:00); the store is down since its announced start, 8 d 30 min = 11,550 min.
    rows.append(("s", "2023-01-24 11:00", "inactive"))
    week_later = evaluate(polls(*rows), first.state)
    assert_down_now(week_later, ("s", "2023-01-16 10:30", 11_550, "2023-01-24 11:00"))
    assert_opened(week_later)
    assert_closed(week_later)

    # It ends at 11:30: announced closed with the announced start, 8 d 1 h = 11,580 min.
    rows.append(("s", "2023-01-24 12:00", "active"))
    ended = evaluate(polls(*rows), week_later.state)
    assert_closed(ended, ("s", "2023-01-16 10:30", "2023-01-24 11:30", 11_580))
    assert_state(ended, ("s", "2023-01-24 12:00", None))


def test_an_incident_older_than_the_week_never_opened_closes_as_the_report_clips_it() -> None:
    # First evaluation at N = 2023-01-24 11:00: inactive from 2023-01-16 10:30 to 2023-01-24 10:50
    # (after the threshold 10:00). The report starts it at N - 7 d: 7 d - 10 min = 10,070 min.
    result = evaluate(
        polls(
            ("s", "2023-01-16 10:00", "active"),
            ("s", "2023-01-16 11:00", "inactive"),
            ("s", "2023-01-24 10:40", "inactive"),
            ("s", "2023-01-24 11:00", "active"),
        )
    )
    assert_closed(result, ("s", "2023-01-17 11:00", "2023-01-24 10:50", 10_070))


def test_late_polls_never_change_events_already_sent() -> None:
    rows = [("s", "2023-01-23 10:00", "active"), ("s", "2023-01-23 10:30", "inactive")]
    opened = evaluate(polls(*rows))
    assert_opened(opened, ("s", "2023-01-23 10:15"))

    # A late active poll at 10:20 (before L = 10:30) moves the report's start to 10:25; the
    # incident announced opened keeps its start, and is not opened again.
    rows += [("s", "2023-01-23 10:20", "active"), ("s", "2023-01-23 11:00", "inactive")]
    moved = evaluate(polls(*rows), opened.state)
    assert_down_now(moved, ("s", "2023-01-23 10:15", 45, "2023-01-23 11:00"))
    assert_opened(moved)
    assert_closed(moved)

    rows.append(("s", "2023-01-23 11:30", "active"))
    closed = evaluate(polls(*rows), moved.state)
    assert_closed(closed, ("s", "2023-01-23 10:15", "2023-01-23 11:15", 60))

    # A late inactive poll at 11:20 (before L = 11:30) extends the report's incident to 11:25;
    # it was announced closed, and is not announced again.
    rows.append(("s", "2023-01-23 11:20", "inactive"))
    extended = evaluate(polls(*rows), closed.state)
    assert_opened(extended)
    assert_closed(extended)


def test_an_announced_incident_that_the_data_no_longer_has_is_closed_where_it_began() -> None:
    rows = [("s", "2023-01-23 10:00", "active"), ("s", "2023-01-23 10:30", "inactive")]
    opened = evaluate(polls(*rows))
    assert_opened(opened, ("s", "2023-01-23 10:15"))

    # The store's hours are replaced: now open Monday 12:00-18:00 only, so no incident at all.
    # The opened incident is closed once, ending where it began.
    rows.append(("s", "2023-01-23 11:00", "active"))
    result = evaluate(polls(*rows), opened.state, hours(("s", MONDAY, "12:00", "18:00")))
    assert_down_now(result)
    assert_closed(result, ("s", "2023-01-23 10:15", "2023-01-23 10:15", 0))
    assert_state(result, ("s", "2023-01-23 11:00", None))


def test_an_opened_incident_is_closed_even_if_it_ended_before_the_threshold() -> None:
    # s's polls lag: at its first evaluation (N = 12:00 from t, threshold 11:00) it is down since
    # 08:15 and announced opened. Its next poll, active at 09:00, ends the incident at 08:45,
    # before the threshold: it is announced closed all the same, as it was announced opened.
    rows = [
        ("s", "2023-01-23 08:00", "active"),
        ("s", "2023-01-23 08:30", "inactive"),
        ("t", "2023-01-23 12:00", "active"),
    ]
    first = evaluate(polls(*rows))
    assert_opened(first, ("s", "2023-01-23 08:15"))
    assert_state(
        first, ("s", "2023-01-23 11:00", "2023-01-23 08:15"), ("t", "2023-01-23 12:00", None)
    )

    rows += [("s", "2023-01-23 09:00", "active"), ("t", "2023-01-23 13:00", "active")]
    later = evaluate(polls(*rows), first.state)
    assert_closed(later, ("s", "2023-01-23 08:15", "2023-01-23 08:45", 30))
    assert_state(later, ("s", "2023-01-23 11:00", None), ("t", "2023-01-23 13:00", None))
