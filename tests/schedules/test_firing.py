"""Firing schedules from the sweep, on the database's clock (set by the test): one report per
fire time with several sweepers at once, a missed fire time once, DST in New York, a deleted
schedule never, and a queue outage losing nothing."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor import jobs
from store_monitor.db.models import Report, ReportSchedule, ReportStatus
from store_monitor.report_runs import REPORTS, RUN_REPORT
from store_monitor.runtime import upkeep_of
from store_monitor.schedules import rows
from store_monitor.schedules.cron import parse_schedule
from store_monitor.schedules.firing import Fired, fire_due_schedules
from store_monitor.settings import Settings
from store_monitor.work.sweep import sweep
from support.database import empty_tables
from support.work import RecordingQueue

from .clock import clocked_engine, clocked_sessions, install_clock, set_clock

NEW_YORK = "America/New_York"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await install_clock(database_url)
    async with clocked_sessions(database_url) as made:
        async with made.begin() as session:
            await empty_tables(await session.connection())
        yield made


async def create(
    sessions: async_sessionmaker[AsyncSession], cron: str, timezone: str = "UTC"
) -> UUID:
    async with sessions.begin() as session:
        parsed = parse_schedule(cron, timezone, min_interval=timedelta(hours=1))
        row = await rows.create_schedule(session, parsed, key_name=None, max_per_key=100)
        return row.id


async def schedule(sessions: async_sessionmaker[AsyncSession], schedule_id: UUID) -> ReportSchedule:
    async with sessions() as session:
        found = await session.get(ReportSchedule, schedule_id)
        assert found is not None
        return found


async def report_ids(sessions: async_sessionmaker[AsyncSession]) -> list[UUID]:
    async with sessions() as session:
        return list((await session.scalars(sa.select(Report.id).order_by(Report.created_at))).all())


async def test_a_schedule_fires_one_report_at_its_fire_time_and_moves_on(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await set_clock(sessions, utc(2026, 1, 5, 5, 0))
    schedule_id = await create(sessions, "0 6 * * *")
    queue = RecordingQueue()

    await set_clock(sessions, utc(2026, 1, 5, 5, 59, 59))
    assert await fire_due_schedules(sessions, queue) == []
    await set_clock(sessions, utc(2026, 1, 5, 6, 0, 2))
    fired = await fire_due_schedules(sessions, queue)
    again = await fire_due_schedules(sessions, queue)

    assert again == []
    assert [f.schedule_id for f in fired] == [schedule_id]
    assert await report_ids(sessions) == [fired[0].report_id]
    row = await schedule(sessions, schedule_id)
    assert row.last_fired_at == utc(2026, 1, 5, 6, 0, 2)
    assert row.last_report_id == fired[0].report_id
    assert row.next_due_at == utc(2026, 1, 6, 6)
    # Created as a trigger without as_of creates it, and queued after the commit.
    async with sessions() as session:
        report = await session.get(Report, fired[0].report_id)
    assert report is not None
    assert (report.status, report.as_of, report.attempts) == (ReportStatus.pending, None, 0)
    assert queue.queued == [(RUN_REPORT, (report.id,), 1)]


async def test_fire_times_missed_while_down_run_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await set_clock(sessions, utc(2026, 1, 1, 0, 0, 5))
    schedule_id = await create(sessions, "0 * * * *")
    queue = RecordingQueue()

    # Back after 60 hourly fire times.
    await set_clock(sessions, utc(2026, 1, 3, 12, 34))
    first = await fire_due_schedules(sessions, queue)
    second = await fire_due_schedules(sessions, queue)
    await set_clock(sessions, utc(2026, 1, 3, 13, 0, 1))
    next_hour = await fire_due_schedules(sessions, queue)

    assert (len(first), len(second), len(next_hour)) == (1, 0, 1)
    assert len(await report_ids(sessions)) == 2
    assert (await schedule(sessions, schedule_id)).next_due_at == utc(2026, 1, 3, 14)


async def test_fire_times_follow_new_york_across_both_dst_changes(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    queue = RecordingQueue()
    await set_clock(sessions, utc(2026, 3, 6, 12))
    six = await create(sessions, "0 6 * * *", NEW_YORK)
    assert (await schedule(sessions, six)).next_due_at == utc(2026, 3, 7, 11)  # 06:00 EST

    await set_clock(sessions, utc(2026, 3, 7, 11, 0, 1))
    assert len(await fire_due_schedules(sessions, queue)) == 1
    assert (await schedule(sessions, six)).next_due_at == utc(2026, 3, 8, 10)  # 06:00 EDT
    await set_clock(sessions, utc(2026, 3, 8, 10, 0, 1))
    assert len(await fire_due_schedules(sessions, queue)) == 1
    assert (await schedule(sessions, six)).next_due_at == utc(2026, 3, 9, 10)

    # Fall back: 01:30 happens twice on 2026-11-01 and fires once.
    async with sessions.begin() as session:
        await session.execute(sa.delete(ReportSchedule))
    await set_clock(sessions, utc(2026, 10, 31, 12))
    repeated = await create(sessions, "30 1 * * *", NEW_YORK)
    fired = 0
    instant = utc(2026, 11, 1, 4)
    while instant < utc(2026, 11, 2, 4):
        await set_clock(sessions, instant)
        fired += len(await fire_due_schedules(sessions, queue))
        instant += timedelta(minutes=15)
    assert fired == 1
    assert (await schedule(sessions, repeated)).last_fired_at == utc(2026, 11, 1, 5, 30)  # EDT
    assert (await schedule(sessions, repeated)).next_due_at == utc(2026, 11, 2, 6, 30)  # EST


async def test_a_deleted_schedule_never_fires(sessions: async_sessionmaker[AsyncSession]) -> None:
    await set_clock(sessions, utc(2026, 1, 5, 5))
    schedule_id = await create(sessions, "0 6 * * *")
    async with sessions.begin() as session:
        assert await rows.delete_schedule(session, schedule_id)
        assert not await rows.delete_schedule(session, schedule_id)

    await set_clock(sessions, utc(2026, 1, 9))
    assert await fire_due_schedules(sessions, RecordingQueue()) == []
    assert await report_ids(sessions) == []


async def test_several_sweepers_at_once_create_one_report_per_fire_time(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await set_clock(sessions, utc(2026, 1, 5, 5))
    schedule_ids = {await create(sessions, f"{minute} 6 * * *") for minute in range(0, 40, 2)}
    # Each sweeper on its own engine: separate connections, as separate processes have.
    engines = [clocked_engine(database_url) for _ in range(6)]
    try:
        sweepers = [async_sessionmaker(engine, expire_on_commit=False) for engine in engines]
        fired: list[Fired] = []
        for minute in (10, 30, 59):
            await set_clock(sessions, utc(2026, 1, 5, 6, minute, 1))
            rounds = await asyncio.gather(
                *(fire_due_schedules(sweeper, RecordingQueue()) for sweeper in sweepers)
            )
            fired.extend(f for one in rounds for f in one)
    finally:
        for engine in engines:
            await engine.dispose()

    # 06:00-06:10 (6 schedules), 06:12-06:30 (10), 06:32-06:38 (4): each fired once.
    assert sorted(f.schedule_id for f in fired) == sorted(schedule_ids)
    assert sorted(await report_ids(sessions)) == sorted(f.report_id for f in fired)


async def test_a_fire_the_queue_could_not_take_waits_pending_for_the_sweep(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    class Down(RecordingQueue):
        async def enqueue(self, *args: object, **kwargs: object) -> None:
            raise ConnectionError("Redis is away")

    await set_clock(sessions, utc(2026, 1, 5, 5))
    schedule_id = await create(sessions, "0 6 * * *")
    await set_clock(sessions, utc(2026, 1, 5, 6, 0, 1))

    fired = await fire_due_schedules(sessions, Down())
    back = RecordingQueue()
    swept = await sweep(sessions, REPORTS, back, max_attempts=3)

    assert [f.schedule_id for f in fired] == [schedule_id]
    assert swept.requeued == [(fired[0].report_id,)]
    assert back.queued == [(RUN_REPORT, (fired[0].report_id,), 1)]


async def test_the_runners_periodic_upkeep_fires_due_schedules(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await set_clock(sessions, utc(2026, 1, 5, 5))
    schedule_id = await create(sessions, "0 6 * * *")
    await set_clock(sessions, utc(2026, 1, 5, 6, 0, 1))
    queue = RecordingQueue()
    upkeep = upkeep_of(Settings(report_retention_days=3650, event_retention_days=3650))

    await jobs.upkeep_round(sessions, queue, upkeep)

    row = await schedule(sessions, schedule_id)
    assert row.last_report_id is not None
    assert await report_ids(sessions) == [row.last_report_id]
    # Queued after the fire, and again by the reports' sweep (real queues keep one job of it).
    assert set(queue.queued) == {(RUN_REPORT, (row.last_report_id,), 1)}
