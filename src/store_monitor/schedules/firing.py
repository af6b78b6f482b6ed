"""Firing schedules, the periodic sweep's duty: each due schedule creates one report, as a
trigger without `as_of` does.

Due schedules are claimed in Postgres (`FOR UPDATE SKIP LOCKED`, on the database's clock), so
any number of sweepers at once create one report per fire time: the report is inserted in the
transaction that moves the schedule's `next_due_at` on, so a crash between the two neither
loses nor doubles a fire. Reports are queued after the commit; one whose job cannot be queued
stays pending for the reports' sweep.
"""

import logging
from dataclasses import dataclass
from typing import Final
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor.db.models import Report, ReportSchedule
from store_monitor.report_runs import queue_report
from store_monitor.schedules.cron import Schedule, decide
from store_monitor.work.queue import WorkQueue

log = logging.getLogger(__name__)

BATCH: Final = 100
"""Schedules claimed per transaction: none holds its locks for long."""


@dataclass(frozen=True, slots=True)
class Fired:
    schedule_id: UUID
    report_id: UUID


async def fire_due_schedules(
    sessionmaker: async_sessionmaker[AsyncSession], queue: WorkQueue
) -> list[Fired]:
    """Create (and queue) one report for every schedule whose next fire time has passed, and
    move each on to its next fire time after now. However many fire times a schedule missed
    (nothing ran), it fires once (`cron.decide`). Safe to run in every runner at once."""
    fired: list[Fired] = []
    while True:
        claimed, seen = await _fire_batch(sessionmaker)
        for _, report in claimed:
            await queue_report(queue, report)
        fired.extend(Fired(schedule_id, report.id) for schedule_id, report in claimed)
        if seen < BATCH:
            return fired


async def _fire_batch(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> tuple[list[tuple[UUID, Report]], int]:
    """One transaction: the reports it created, by schedule, and how many due rows it saw."""
    async with sessionmaker.begin() as session:
        now = await session.scalar(sa.select(sa.func.now()))
        assert now is not None
        due = (
            await session.scalars(
                sa.select(ReportSchedule)
                .where(ReportSchedule.next_due_at <= now)
                .order_by(ReportSchedule.next_due_at)
                .limit(BATCH)
                # Another sweeper firing a schedule holds it: skip it rather than wait and fire
                # it twice (its new next_due_at will be in the future).
                .with_for_update(skip_locked=True)
            )
        ).all()
        claimed: list[tuple[UUID, Report]] = []
        for row in due:
            decision = decide(
                Schedule(cron=row.cron, timezone=row.timezone),
                last_fired=row.last_fired_at or row.created_at,
                now=now,
            )
            row.next_due_at = decision.next_due
            if not decision.fire_now:
                continue
            # Its job logs under this id, as a triggered report's under its request's.
            report = Report(as_of=None, request_id=f"schedule:{row.id}")
            session.add(report)
            await session.flush()
            row.last_fired_at = now
            row.last_report_id = report.id
            claimed.append((row.id, report))
            log.info(
                "schedule %s (%s %s): fired report %s", row.id, row.cron, row.timezone, report.id
            )
    return claimed, len(due)
