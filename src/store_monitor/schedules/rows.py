"""Schedules as rows, on the request side: create, list, read, delete. Each flushes in the
caller's session and never commits (the request's transaction does)."""

from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.keyset import Cursor, Page, newest_first
from store_monitor.db.models import ApiKey, ReportSchedule
from store_monitor.db.quotas import QuotaReached, check_quota
from store_monitor.schedules.cron import Schedule, next_fire_after

# The row type and the quota's error are named here too: the dashboard reads them from the use
# case.
__all__ = [
    "QuotaReached",
    "ReportSchedule",
    "create_schedule",
    "delete_schedule",
    "get_schedule",
    "list_schedules",
]


async def create_schedule(
    session: AsyncSession, schedule: Schedule, *, key_name: str | None, max_per_key: int
) -> ReportSchedule:
    """A new schedule, first due at its first fire time after now (the database's clock, as
    the sweep that fires it reads); `key_name` is the creating key's (None with auth off).
    `QuotaReached` if that key has `max_per_key` already."""
    created_by = None
    if key_name is not None:
        created_by = await session.scalar(sa.select(ApiKey.id).where(ApiKey.name == key_name))
    await check_quota(
        session,
        thing="schedule",
        key_name=key_name,
        owned=sa.select(sa.func.count())
        .select_from(ReportSchedule)
        .where(ReportSchedule.created_by.is_not_distinct_from(created_by)),
        limit=max_per_key,
    )
    now = await session.scalar(sa.select(sa.func.now()))
    assert now is not None
    row = ReportSchedule(
        cron=schedule.cron,
        timezone=schedule.timezone,
        created_by=created_by,
        created_at=now,
        next_due_at=next_fire_after(schedule, now),
    )
    session.add(row)
    await session.flush()
    return row


async def get_schedule(session: AsyncSession, schedule_id: UUID) -> ReportSchedule | None:
    return await session.get(ReportSchedule, schedule_id)


async def list_schedules(
    session: AsyncSession, *, limit: int, after: Cursor | None = None
) -> Page[ReportSchedule]:
    """Schedules newest first (ties by id), `limit` at most, those after the cursor if given: a
    keyset page (`db.keyset`)."""
    return await newest_first(session, ReportSchedule, limit=limit, after=after)


async def delete_schedule(session: AsyncSession, schedule_id: UUID) -> bool:
    """Delete the schedule; False if there is none. A sweep firing it at this moment holds its
    row: the deletion waits for that fire's commit, and no fire comes after it."""
    deleted = await session.execute(
        sa.delete(ReportSchedule)
        .where(ReportSchedule.id == schedule_id)
        .returning(ReportSchedule.id)
    )
    return deleted.one_or_none() is not None
