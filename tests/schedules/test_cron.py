"""Cron schedules: validation naming the bad field, fire times in a zone across DST, and one
run for any number of fire times missed while nothing ran."""

from datetime import UTC, datetime, timedelta

import pytest

from store_monitor.schedules.cron import (
    Decision,
    Schedule,
    ScheduleError,
    decide,
    next_fire_after,
    parse_schedule,
)

NEW_YORK = "America/New_York"
HOUR = timedelta(hours=1)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_a_valid_schedule_is_normalised_and_defaults_to_utc() -> None:
    assert parse_schedule(" 0  6 * *\t1 ", min_interval=HOUR) == Schedule(
        cron="0 6 * * 1", timezone="UTC"
    )
    assert parse_schedule("0 9-17 * * mon-fri", NEW_YORK, min_interval=HOUR).timezone == NEW_YORK


@pytest.mark.parametrize(
    ("cron", "timezone", "field", "message"),
    [
        ("0 6 * *", "UTC", "cron", "expected 5 fields"),
        ("0 0 6 * * 1", "UTC", "cron", "got 6"),
        ("", "UTC", "cron", "got 0"),
        ("61 * * * *", "UTC", "cron", "Bad minute"),
        ("0 25 * * *", "UTC", "cron", "Bad hour"),
        ("0 0 32 * *", "UTC", "cron", "Bad day-of-month"),
        ("0 0 * 13 *", "UTC", "cron", "Bad month"),
        ("0 0 * * funday", "UTC", "cron", "Bad day-of-week"),
        ("0 6 * * 1", "Mars/Olympus_Mons", "timezone", "not an IANA time zone"),
        ("0 6 * * 1", "../../etc/passwd", "timezone", "not an IANA time zone"),
        ("0 6 * * 1", "localtime", "timezone", "not an IANA time zone"),
        ("0 6 * * 1", "", "timezone", "not an IANA time zone"),
    ],
)
def test_a_bad_schedule_names_its_bad_field(
    cron: str, timezone: str, field: str, message: str
) -> None:
    with pytest.raises(ScheduleError, match=message) as raised:
        parse_schedule(cron, timezone, min_interval=HOUR)

    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("cron", "shortest"),
    [
        ("* * * * *", "1 minute"),
        ("*/15 * * * *", "15 minutes"),
        ("0,59 6 * * 1", "59 minutes"),
        # The last fire of one day and the first of the next count too, whichever days match.
        ("30 0,23 * * *", "60 minutes"),
        ("0,30 0,23 1 1 *", "30 minutes"),
    ],
)
def test_a_schedule_may_not_fire_more_often_than_the_least_interval(
    cron: str, shortest: str
) -> None:
    with pytest.raises(ScheduleError) as raised:
        parse_schedule(cron, min_interval=timedelta(minutes=61))

    assert raised.value.field == "cron"
    assert raised.value.message == (
        f"{cron!r} fires as little as {shortest} apart; schedules may fire at most once every "
        "61 minutes"
    )


@pytest.mark.parametrize(
    "cron", ["0 * * * *", "0 0,23 * * *", "59 23 31 12 *", "0 */2 * * 1-5", "0 6 * * 1"]
)
def test_a_schedule_whose_fire_times_are_the_least_interval_apart_is_valid(cron: str) -> None:
    assert parse_schedule(cron, min_interval=HOUR).cron == cron


def test_the_next_fire_time_is_computed_in_the_zone_and_returned_in_utc() -> None:
    schedule = parse_schedule("0 6 * * 1", NEW_YORK, min_interval=HOUR)

    # Monday 2026-01-05 06:00 EST is 11:00 UTC.
    fire = next_fire_after(schedule, utc(2026, 1, 1))

    assert fire == utc(2026, 1, 5, 11)
    assert fire.tzinfo is UTC


def test_the_next_fire_time_is_strictly_after_the_instant() -> None:
    schedule = parse_schedule("0 6 * * *", min_interval=HOUR)

    assert next_fire_after(schedule, utc(2026, 1, 5, 6)) == utc(2026, 1, 6, 6)
    assert next_fire_after(schedule, utc(2026, 1, 5, 5, 59, 59)) == utc(2026, 1, 5, 6)
    assert next_fire_after(schedule, utc(2026, 1, 5, 6, 0, 0) + timedelta(microseconds=1)) == utc(
        2026, 1, 6, 6
    )


def test_an_instant_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_fire_after(parse_schedule("0 6 * * *", min_interval=HOUR), datetime(2026, 1, 1))


def test_spring_forward_keeps_local_hours_and_runs_a_skipped_time_after_the_gap() -> None:
    # 2026-03-08 in New York: 02:00 EST jumps to 03:00 EDT.
    six = parse_schedule("0 6 * * *", NEW_YORK, min_interval=HOUR)
    assert next_fire_after(six, utc(2026, 3, 7, 12)) == utc(2026, 3, 8, 10)  # 06:00 EDT
    assert next_fire_after(six, utc(2026, 3, 6, 12)) == utc(2026, 3, 7, 11)  # 06:00 EST

    skipped = parse_schedule("30 2 * * *", NEW_YORK, min_interval=HOUR)
    first = next_fire_after(skipped, utc(2026, 3, 7, 12))
    assert first == utc(2026, 3, 8, 7)  # 03:00 EDT, the end of the gap
    assert next_fire_after(skipped, first) == utc(2026, 3, 9, 6, 30)  # 02:30 EDT


def test_fall_back_a_repeated_local_time_runs_once() -> None:
    # 2026-11-01 in New York: 02:00 EDT falls back to 01:00 EST, so 01:30 happens twice.
    repeated = parse_schedule("30 1 * * *", NEW_YORK, min_interval=HOUR)

    first = next_fire_after(repeated, utc(2026, 10, 31, 12))
    second = next_fire_after(repeated, first)

    assert first == utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert second == utc(2026, 11, 2, 6, 30)  # 01:30 EST the next day, not 06:30 UTC on the 1st
    six = parse_schedule("0 6 * * *", NEW_YORK, min_interval=HOUR)
    assert next_fire_after(six, utc(2026, 11, 1)) == utc(2026, 11, 1, 11)  # 06:00 EST


def test_a_schedule_waits_for_its_next_fire_time() -> None:
    schedule = parse_schedule("0 6 * * *", min_interval=HOUR)

    decision = decide(schedule, last_fired=utc(2026, 1, 4, 6), now=utc(2026, 1, 5, 5, 59))

    assert decision == Decision(fire_now=False, next_due=utc(2026, 1, 5, 6))


def test_a_schedule_fires_at_its_fire_time_and_then_waits_for_the_next() -> None:
    schedule = parse_schedule("0 6 * * *", min_interval=HOUR)

    decision = decide(schedule, last_fired=utc(2026, 1, 4, 6), now=utc(2026, 1, 5, 6, 0, 2))

    assert decision == Decision(fire_now=True, next_due=utc(2026, 1, 6, 6))


def test_a_new_schedule_does_not_fire_for_a_time_before_it_was_created() -> None:
    schedule = parse_schedule("0 6 * * *", min_interval=HOUR)
    created = utc(2026, 1, 5, 6, 0, 30)

    assert decide(schedule, last_fired=created, now=created + timedelta(minutes=5)) == Decision(
        fire_now=False, next_due=utc(2026, 1, 6, 6)
    )


def test_fire_times_missed_while_down_run_once_when_the_service_is_back() -> None:
    schedule = parse_schedule("0 * * * *", min_interval=HOUR)
    last_fired = utc(2026, 1, 1, 0, 0, 5)
    back = utc(2026, 1, 3, 12, 34)  # 60 hourly fire times later
    fired_at: list[datetime] = []

    # A sweep every 5 minutes from the moment the service is back, recording fires as it would.
    now = back
    while now < back + timedelta(hours=2):
        decision = decide(schedule, last_fired=last_fired, now=now)
        if decision.fire_now:
            fired_at.append(now)
            last_fired = now
        now += timedelta(minutes=5)

    assert fired_at == [back, utc(2026, 1, 3, 13, 4), utc(2026, 1, 3, 14, 4)]
