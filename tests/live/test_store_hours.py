"""A runner's copy of the business hours and zones (`db.store_hours`): used while their version is
unchanged, read again after any write to them, and the same inputs as reading them whole."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from polars.testing import assert_frame_equal

from engine.frames import hours, zones
from store_monitor import ingest, live
from store_monitor.db import live_state
from store_monitor.db.report_inputs import load_report_inputs
from store_monitor.db.store_hours import StoreHoursCache, current_hours

from .conftest import RUNNER, Sessions, ingest_polls, polls

T0 = datetime(2023, 1, 20, tzinfo=UTC)  # a Friday
HOUR = timedelta(hours=1)


def at(hours: float) -> datetime:
    return T0 + hours * HOUR


async def evaluate_with(sessions: Sessions, cache: StoreHoursCache) -> None:
    while True:
        async with sessions() as session:
            due = await live_state.next_pending(session)
        if due is None:
            return
        await live.run_evaluation(sessions, *due, RUNNER, hours=cache)


async def down_now(sessions: Sessions) -> list[str]:
    async with sessions() as session:
        return [store.store_id for store in (await live.down_now(session, owner_id=None)).stores]


async def test_hours_changed_between_two_evaluations_are_seen(sessions: Sessions) -> None:
    cache = StoreHoursCache()
    await ingest_polls(sessions, polls(("a", "active", at(0)), ("a", "inactive", at(10))))
    await evaluate_with(sessions, cache)
    assert await down_now(sessions) == ["a"]  # no hours rows: open all the time

    # Open on Mondays only: closed at N, a Friday.
    async with sessions.begin() as session:
        await ingest.ingest_business_hours(session, hours(("a", 0, "09:00", "17:00")))
    await evaluate_with(sessions, cache)
    assert await down_now(sessions) == []

    async with sessions.begin() as session:
        await ingest.ingest_business_hours(session, hours(("a", 4, "00:00", "23:59")))
    await ingest_polls(sessions, polls(("a", "inactive", at(11))))
    await evaluate_with(sessions, cache)
    assert await down_now(sessions) == ["a"]


async def test_any_write_to_hours_or_zones_makes_the_kept_copy_stale(
    sessions: Sessions,
) -> None:
    cache = StoreHoursCache()

    async def read() -> object:
        async with sessions() as session:
            connection = await session.connection()
            return await current_hours(connection, cache)

    first = await read()
    assert await read() is first  # unchanged: the copy kept
    for statement in (
        "INSERT INTO timezones VALUES ('a', 'Asia/Tokyo')",
        "INSERT INTO business_hours VALUES ('a', 1, '09:00', '17:00')",
        "UPDATE timezones SET timezone_str = 'Europe/Paris'",
        "DELETE FROM business_hours",
        "TRUNCATE timezones",
    ):
        before = await read()
        async with sessions.begin() as session:
            await session.execute(sa.text(statement))
        after = await read()
        assert after is not before, statement
        assert after is cache.latest
    assert cache.latest is not None
    assert cache.latest.business_hours.is_empty()
    assert cache.latest.timezones.is_empty()


async def test_inputs_with_the_kept_hours_are_those_read_whole(sessions: Sessions) -> None:
    await ingest_polls(
        sessions,
        polls(
            ("a", "active", at(0)),
            ("b", "inactive", at(1)),
            ("c", "active", at(2)),
            ("d", "active", at(3)),
        ),
    )
    async with sessions.begin() as session:
        await ingest.ingest_business_hours(
            session,
            hours(
                ("a", 0, "09:00", "17:00"), ("a", 2, "10:00", "12:00"), ("c", 4, "08:00", "20:00")
            ),
        )
        await ingest.ingest_timezones(session, zones(("a", "Asia/Tokyo"), ("b", "Europe/Paris")))
    cache = StoreHoursCache()
    for store_ids in (None, ["a", "b"], ["d"]):
        for _ in range(2):  # read whole, then kept
            async with sessions() as session:
                whole = await load_report_inputs(session, as_of=at(3), store_ids=store_ids)
            async with sessions() as session:
                kept = await load_report_inputs(
                    session, as_of=at(3), store_ids=store_ids, hours=cache
                )
            assert_frame_equal(kept.polls, whole.polls)
            assert_frame_equal(kept.business_hours, whole.business_hours)
            assert_frame_equal(kept.timezones, whole.timezones)
