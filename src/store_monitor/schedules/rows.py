"""Schedules as rows, on the request side: create, list, read, delete. Each flushes in the
caller's session and never commits (the request's transaction does)."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import ApiKey, ReportSchedule
from store_monitor.schedules.cron import Schedule, next_fire_after

# The row type is named here too, so that the dashboard reads it from the use case.
__all__ = [
    "ReportSchedule",
    "ScheduleCursor",
    "SchedulePage",
    "create_schedule",
    "delete_schedule",
    "get_schedule",
    "list_schedules",
]


async def create_schedule(
    session: AsyncSession, schedule: Schedule, *, key_name: str | None
) -> ReportSchedule:
    """A new schedule, first due at its first fire time after now (the database's clock, as
    the sweep that fires it reads); `key_name` is the creating key's (None with auth off)."""
    now = await session.scalar(sa.select(sa.func.now()))
    assert now is not None
    created_by = None
    if key_name is not None:
        created_by = await session.scalar(sa.select(ApiKey.id).where(ApiKey.name == key_name))
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


@dataclass(frozen=True, slots=True)
class ScheduleCursor:
    """Where a page of `list_schedules` ended: its last schedule's creation instant and id."""

    created_at: datetime
    schedule_id: UUID


@dataclass(frozen=True, slots=True)
class SchedulePage:
    schedules: list[ReportSchedule]
    next: ScheduleCursor | None
    """Where the next page starts; None on the last page."""


async def list_schedules(
    session: AsyncSession, *, limit: int, after: ScheduleCursor | None = None
) -> SchedulePage:
    """Schedules newest first (ties by id), `limit` at most, those after the cursor if given:
    keyset pagination, as `reports.list_reports` pages reports."""
    query = (
        sa.select(ReportSchedule)
        .order_by(ReportSchedule.created_at.desc(), ReportSchedule.id.desc())
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(
            sa.tuple_(ReportSchedule.created_at, ReportSchedule.id)
            < sa.tuple_(after.created_at, after.schedule_id)
        )
    found = list((await session.scalars(query)).all())
    if len(found) <= limit:
        return SchedulePage(schedules=found, next=None)
    last = found[limit - 1]
    return SchedulePage(schedules=found[:limit], next=ScheduleCursor(last.created_at, last.id))


async def delete_schedule(session: AsyncSession, schedule_id: UUID) -> bool:
    """Delete the schedule; False if there is none. A sweep firing it at this moment holds its
    row: the deletion waits for that fire's commit, and no fire comes after it."""
    deleted = await session.execute(
        sa.delete(ReportSchedule)
        .where(ReportSchedule.id == schedule_id)
        .returning(ReportSchedule.id)
    )
    return deleted.one_or_none() is not None
