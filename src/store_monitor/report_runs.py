"""A report's job: one attempt at computing it, under a lease (see `store_monitor.work`).

A report of at most the runner's `shard_stores` stores is computed by its own attempt; a
larger one is planned into shards (see `store_monitor.shards`) that jobs of their own compute.
"""

import asyncio
import logging
from datetime import datetime
from typing import Final
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor import engine, shards
from store_monitor.db.models import Report, ReportStatus
from store_monitor.db.report_files import encode_report_csv, store_report_file
from store_monitor.db.report_inputs import StoreRange, store_ranges
from store_monitor.db.session import reading
from store_monitor.logs import request_context
from store_monitor.webhooks.report_events import announce_completed, announce_failed
from store_monitor.work.attempt import Attempt, Claimed, run
from store_monitor.work.lease import LeaseLost, Runner, finished_values
from store_monitor.work.queue import WorkQueue, queue_attempt
from store_monitor.work.table import Hold, Key, WorkTable, key_id

log = logging.getLogger(__name__)

RUN_REPORT: Final = "run_report"
"""The job of a report's attempt; its arguments: the report id as text, the attempt."""


def _not_in_shards() -> sa.ColumnElement[bool]:
    # A report in shards is left to its shards' sweep (see `store_monitor.shards`).
    return sa.not_(sa.and_(Report.status == ReportStatus.running, Report.shards_total.is_not(None)))


async def _failed(session: AsyncSession, key: Key, reason: str) -> None:
    report_id = key_id(key)
    await announce_failed(session, report_id, reason)
    request_id = await session.scalar(sa.select(Report.request_id).where(Report.id == report_id))
    with request_context(request_id):
        log.warning("report %s: failed: %s", report_id, reason)


REPORTS: Final = WorkTable(
    kind=RUN_REPORT,
    model=Report,
    noun="report",
    order_by=(Report.created_at,),
    waiting=_not_in_shards,
    on_fail=_failed,
)


async def queue_report(queue: WorkQueue, report: Report) -> None:
    """Queue the next attempt of a committed report; the sweep's, if the queue is away."""
    await queue_attempt(queue, REPORTS, (report.id,), report.attempts + 1)


async def run_report(
    sessionmaker: async_sessionmaker[AsyncSession],
    report_id: UUID,
    attempt: int,
    runner: Runner,
    *,
    queue: WorkQueue | None = None,
) -> ReportStatus | None:
    """The job's body: make attempt `attempt` of the report, if the report is waiting for it.

    The attempt claims the report only if it has had fewer than `attempt` attempts and is
    pending, or running under a lease that ran out (its runner died or stalled): it becomes
    running, leased to `runner`. Any other job for the report (a duplicate, a stale retry, a
    report finished or deleted) does nothing. A report of at most `runner.shard_stores` stores
    is computed here: the rows and the `complete` status are written in one transaction that
    first checks, on the locked report row, that the attempt still holds it. A larger one is
    planned into shards, queued on `queue` (without it, by the next sweep), and left running.
    Same inputs, same `now`: a takeover computes the same report.
    For errors, timeouts and cancellations, see `store_monitor.work.attempt.run`.
    Returns the report's status as the job leaves it; None if the attempt did not run.
    """
    hold = Hold(sessionmaker, REPORTS, (report_id,), attempt, runner)
    return await run(ReportAttempt(hold, queue), runner)


class ReportAttempt(Attempt):
    def __init__(self, hold: Hold, queue: WorkQueue | None) -> None:
        super().__init__(hold)
        self.queue = queue
        self.as_of: datetime | None = None
        """The `now` to compute at: the requested `as_of`, else the `now` a previous run
        resolved."""

    @property
    def report_id(self) -> UUID:
        return key_id(self.hold.key)

    async def claim(self) -> Claimed | None:
        row = await self.hold.claim(sa.func.coalesce(Report.as_of, Report.now), Report.request_id)
        if row is None:
            return None
        self.as_of = row[0]
        return Claimed(request_id=row[1])

    async def work(self) -> ReportStatus:
        sessionmaker = self.hold.sessionmaker
        async with reading(sessionmaker) as session:
            ranges = await store_ranges(session, per_range=self.hold.runner.shard_stores)
        if len(ranges) > 1:
            return await self._fan_out(ranges)
        result, ignored_polls = await shards.compute_stores(sessionmaker, as_of=self.as_of)
        async with sessionmaker.begin() as session:
            if not await write_complete(
                session,
                self.report_id,
                self.number,
                result,
                ignored_polls,
                public_url=self.hold.runner.public_url,
            ):
                raise LeaseLost
        return ReportStatus.complete

    async def _fan_out(self, ranges: list[StoreRange]) -> ReportStatus:
        async with self.hold.sessionmaker.begin() as session:
            if not await shards.write_plan(
                session, self.report_id, self.hold.fence(), as_of=self.as_of, ranges=ranges
            ):
                raise LeaseLost
        total = len(ranges)
        log.info("report %s: planned in %d shards", self.report_id, total)
        if self.queue is None:
            return ReportStatus.running
        try:
            for shard in range(1, total + 1):
                await self.queue.enqueue(shards.RUN_SHARD, (self.report_id, shard), 1)
        except Exception:
            # The shards are recorded, pending: the sweep queues those not queued here.
            log.warning(
                "report %s: could not queue its shards; the sweep will",
                self.report_id,
                exc_info=True,
            )
        return ReportStatus.running


async def write_complete(
    session: AsyncSession,
    report_id: UUID,
    attempt: int,
    result: engine.Report,
    ignored_polls: int,
    *,
    public_url: str = "",
) -> bool:
    """The attempt's final write, in the caller's one transaction: the `complete` status, then
    the rows, and `report.completed` (its CSV's link under `public_url`). Fenced: the status is
    written (and the report row locked) only if the report is still running as this attempt;
    else nothing is written and the answer is False. Flushes, never commits."""
    # The UPDATE comes first, no read before it: it is the check and the lock in one statement.
    held = await session.execute(
        sa.update(Report)
        .where(*REPORTS.held((report_id,), attempt))
        .values(
            {
                **finished_values(),
                "now": result.now,
                "row_count": result.rows.height,
                "unknown_timezones": len(result.unknown_timezones),
                "ignored_polls": ignored_polls,
                "incident_count": None if result.incidents is None else result.incidents.height,
                "shards_total": 1,
                "shards_left": 0,
            }
        )
        .returning(Report.id)
    )
    if held.one_or_none() is None:
        return False
    # Formatting and compressing the file release the GIL: in a thread, while Postgres takes
    # the results.
    encoding = asyncio.ensure_future(asyncio.to_thread(encode_report_csv, result.rows))
    try:
        await shards.write_results(session, report_id, result)
    finally:
        encoded = await encoding
    # Same transaction as the status: a complete report always has its file.
    await store_report_file(session, report_id, encoded)
    await announce_completed(session, report_id, public_url=public_url)
    return True
