"""Reports in shards: computing a range of a report's stores, and a report too large for one job
split into ranges that jobs of their own compute.

A report's first job plans it: with more stores than the runner's `shard_stores`, it cuts the
stores, in store-id order, into contiguous ranges (`store_ranges`), one shard each, and pins
the report's `now` (`write_plan`). Each shard is claimed, leased, fenced, taken over and
retried alone, as a report is (see `store_monitor.leases`); it reads only its stores' polls of
the week and writes only its stores' rows, incidents and days. A counter on the report counts
the shards left; the shard that brings it to zero completes the report in the same
transaction, its CSV file made of the shards' parts in order. A shard out of attempts, or with
an error, fails the report with a reason that names it.

Every shard computes at the pinned `now`, so polls that arrive while a report runs (at later
instants) change none of its figures.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor.db.models import Report, ReportShard, ReportStatus, Store
from store_monitor.db.report_files import store_report_csv
from store_monitor.db.report_inputs import ALL_STORES, ReportInputs, StoreRange, load_report_inputs
from store_monitor.db.report_results import replace_report_details, replace_report_rows
from store_monitor.db.session import reading
from store_monitor.engine import compute_report, incident_counts
from store_monitor.engine.report import Report as ComputedReport
from store_monitor.formats import report_csv_bytes
from store_monitor.frames import REPORT
from store_monitor.leases import (
    Claimed,
    JobState,
    LeaseLost,
    Runner,
    claimed_values,
    failed_values,
    gave_up,
    given_back_values,
    held,
    needs_attempt,
    next_attempt,
    renewed_values,
    run,
)
from store_monitor.logs import request_context

log = logging.getLogger(__name__)

EnqueueShard = Callable[[UUID, int, int], Awaitable[None]]
"""Queue the job of attempt `attempt` of shard `shard` of the report; a no-op if that job is
already queued or running."""
LookUpShard = Callable[[UUID, int, int], Awaitable[JobState]]


async def compute_stores(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    as_of: datetime | None,
    stores: StoreRange = ALL_STORES,
    count_later: bool | None = None,
) -> tuple[ComputedReport, ReportInputs]:
    """The report of the stores in `stores` at `as_of` (None: the latest poll), with its
    incidents and days, read from one snapshot; and the inputs it was computed from."""
    async with sessionmaker() as session:
        inputs = await load_report_inputs(
            session, as_of=as_of, stores=stores, count_later=count_later
        )
    # Polars releases the GIL: computing in a thread keeps the event loop serving.
    result = await asyncio.to_thread(
        compute_report, inputs.polls, inputs.business_hours, inputs.timezones, as_of=inputs.now
    )
    return result, inputs


async def write_results(
    session: AsyncSession,
    report_id: UUID,
    result: ComputedReport,
    *,
    stores: StoreRange = ALL_STORES,
) -> None:
    """Make `result` the report's rows, incidents and days of the stores in `stores`, replacing
    any it had there. Flushes, never commits."""
    assert result.incidents is not None
    assert result.daily is not None
    counts = None if result.now is None else incident_counts(result.incidents, now=result.now)
    await replace_report_rows(
        session, report_id, result.rows, incident_counts=counts, stores=stores
    )
    await replace_report_details(
        session, report_id, incidents=result.incidents, daily=result.daily, stores=stores
    )


async def write_plan(
    session: AsyncSession,
    report_id: UUID,
    attempt: int,
    *,
    as_of: datetime | None,
    ranges: list[StoreRange],
) -> bool:
    """Record the report's shards, one per range of `ranges` (in store-id order, see
    `store_ranges`), all pending, and pin the `now` every shard computes at: `as_of`, or else
    the latest poll. False (and nothing written) if attempt `attempt` no longer holds the
    report. Flushes, never commits.

    The report stays running; from now on its shards hold the leases, and the report's own
    sweep leaves it to theirs (see `sweep`).
    """
    latest = sa.select(sa.func.max(Store.latest_poll_at)).scalar_subquery()
    total = len(ranges)
    planned = await session.execute(
        sa.update(Report)
        .where(Report.id == report_id, *held(Report, attempt))
        .values(now=latest if as_of is None else as_of, shards_total=total, shards_left=total)
        .returning(Report.id)
    )
    if planned.one_or_none() is None:
        return False
    await session.execute(
        sa.insert(ReportShard),
        [
            {
                "report_id": report_id,
                "shard": shard,
                "first_store": stores.first,
                "end_store": stores.end,
                "status": ReportStatus.pending,
            }
            for shard, stores in enumerate(ranges, start=1)
        ],
    )
    return True


async def run_shard(
    sessionmaker: async_sessionmaker[AsyncSession],
    report_id: UUID,
    shard: int,
    attempt: int,
    runner: Runner,
) -> ReportStatus | None:
    """The shard job's body: make attempt `attempt` of the shard, if the shard is waiting for
    it and its report is running (see `store_monitor.leases.run`). The status the shard is left
    with (`complete` also when it completed the report); None if the attempt did not run."""
    return await run(_ShardAttempt(sessionmaker, report_id, shard, attempt, runner), runner)


@dataclass(slots=True)
class _ShardAttempt:
    sessionmaker: async_sessionmaker[AsyncSession]
    report_id: UUID
    shard: int
    number: int
    runner: Runner
    _stores: StoreRange = ALL_STORES
    _now: datetime | None = None
    _count_later: bool = False
    _total: int = 0

    @property
    def label(self) -> str:
        return f"report {self.report_id}, shard {self.shard}"

    async def claim(self) -> Claimed | None:
        if self.number > self.runner.max_attempts:
            return None
        async with self.sessionmaker.begin() as session:
            # One UPDATE, no read before it: the conditions are checked on the rows it locks.
            row = (
                await session.execute(
                    sa.update(ReportShard)
                    .where(
                        ReportShard.report_id == self.report_id,
                        ReportShard.shard == self.shard,
                        ReportShard.attempts < self.number,  # see `next_attempt`
                        needs_attempt(ReportShard),
                        Report.id == ReportShard.report_id,
                        Report.status == ReportStatus.running,
                    )
                    .values(claimed_values(self.runner, self.number))
                    .returning(
                        ReportShard.first_store,
                        ReportShard.end_store,
                        Report.now,
                        Report.as_of,
                        Report.shards_total,
                        Report.request_id,
                    )
                )
            ).one_or_none()
        if row is None:
            return None
        self._stores = StoreRange(row.first_store, row.end_store)
        self._now, self._count_later = row.now, row.as_of is not None
        self._total = row.shards_total or 0
        return Claimed(request_id=row.request_id)

    async def work(self) -> ReportStatus:
        # A report is sharded only when it has stores, so polls: its `now` is resolved.
        assert self._now is not None
        result, inputs = await compute_stores(
            self.sessionmaker, as_of=self._now, stores=self._stores, count_later=self._count_later
        )
        part = await asyncio.to_thread(report_csv_bytes, result.rows, header=False)
        async with self.sessionmaker.begin() as session:
            left = await self._write(session, result, part, inputs.ignored_polls)
            if left is None:
                raise LeaseLost
            if left == 0:
                await _complete(session, self.report_id)
        log.info(
            "report %s: shard %d of %d complete (%d stores)",
            self.report_id,
            self.shard,
            self._total,
            result.rows.height,
        )
        return ReportStatus.complete

    async def _write(
        self, session: AsyncSession, result: ComputedReport, part: bytes, ignored: int
    ) -> int | None:
        """The shard's results and its count off the report's shards left (None: not held)."""
        held = await session.execute(
            sa.update(ReportShard)
            .where(*self._held())
            .values(
                status=ReportStatus.complete,
                finished_at=datetime.now(UTC),
                row_count=result.rows.height,
                incident_count=None if result.incidents is None else result.incidents.height,
                unknown_timezones=len(result.unknown_timezones),
                ignored_polls=ignored,
                csv=part,
                lease_owner=None,
                lease_expires_at=None,
            )
            .returning(ReportShard.shard)
        )
        if held.one_or_none() is None:
            return None
        await write_results(session, self.report_id, result, stores=self._stores)
        # The fan-in: last, so that the report's row is locked only until the commit.
        counted = await session.execute(
            sa.update(Report)
            .where(
                Report.id == self.report_id,
                Report.status == ReportStatus.running,
                Report.shards_left > 0,
            )
            .values(shards_left=Report.shards_left - 1)
            .returning(Report.shards_left)
        )
        return counted.scalar_one_or_none()

    async def renew(self) -> bool:
        async with self.sessionmaker.begin() as session:
            renewed = await session.execute(
                sa.update(ReportShard)
                .where(
                    *self._held(),
                    ReportShard.lease_owner == self.runner.owner,
                    # A report failed by another shard, or deleted, stops its shards too.
                    Report.id == ReportShard.report_id,
                    Report.status == ReportStatus.running,
                )
                .values(renewed_values(self.runner))
                .returning(ReportShard.shard)
            )
            return renewed.one_or_none() is not None

    async def give_back(self, reason: str) -> None:
        async with self.sessionmaker.begin() as session:
            await session.execute(
                sa.update(ReportShard)
                .where(*self._held(), ReportShard.lease_owner == self.runner.owner)
                .values(given_back_values(reason))
            )

    async def fail(self, reason: str) -> bool:
        return await _fail_report(
            self.sessionmaker, self.report_id, self.shard, reason, *self._held()
        )

    def _held(self) -> tuple[sa.ColumnElement[bool], ...]:
        """The fence of every write of the attempt: the shard still running as it."""
        return (
            ReportShard.report_id == self.report_id,
            ReportShard.shard == self.shard,
            *held(ReportShard, self.number),
        )


async def _complete(session: AsyncSession, report_id: UUID) -> None:
    """Complete the report whose last shard this transaction wrote: its file from the shards'
    parts in order, its counts their sums. Flushes, never commits."""
    parts = (
        await session.execute(
            sa.select(
                ReportShard.csv,
                ReportShard.row_count,
                ReportShard.incident_count,
                ReportShard.unknown_timezones,
                ReportShard.ignored_polls,
            )
            .where(ReportShard.report_id == report_id)
            .order_by(ReportShard.shard)
        )
    ).all()
    data = report_csv_bytes(REPORT.to_frame()) + b"".join(part.csv or b"" for part in parts)
    rows = sum(part.row_count or 0 for part in parts)
    await store_report_csv(session, report_id, data, rows=rows)
    await session.execute(
        sa.update(Report)
        .where(Report.id == report_id)
        .values(
            status=ReportStatus.complete,
            finished_at=datetime.now(UTC),
            row_count=rows,
            incident_count=sum(part.incident_count or 0 for part in parts),
            unknown_timezones=sum(part.unknown_timezones or 0 for part in parts),
            ignored_polls=sum(part.ignored_polls or 0 for part in parts),
            error=None,
            lease_owner=None,
            lease_expires_at=None,
        )
    )
    # The file holds them now.
    await session.execute(
        sa.update(ReportShard).where(ReportShard.report_id == report_id).values(csv=None)
    )
    log.info("report %s: complete, from %d shards", report_id, len(parts))


def _describe(stores: StoreRange) -> str:
    """The range in words, for reasons and logs."""
    start = "the first store" if stores.first is None else repr(stores.first)
    end = "the last store" if stores.end is None else f"before {stores.end!r}"
    return f"stores from {start} to {end}"


async def _fail_report(
    sessionmaker: async_sessionmaker[AsyncSession],
    report_id: UUID,
    shard: int,
    reason: str,
    *conditions: sa.ColumnElement[bool],
) -> bool:
    """Fail the shard, if `conditions` hold, and its report with a reason naming the shard;
    False if nothing changed."""
    async with sessionmaker.begin() as session:
        failed = (
            await session.execute(
                sa.update(ReportShard)
                .where(ReportShard.report_id == report_id, ReportShard.shard == shard, *conditions)
                .values(failed_values(reason))
                .returning(ReportShard.first_store, ReportShard.end_store)
            )
        ).one_or_none()
        if failed is None:
            return False
        report = (
            await session.execute(
                sa.select(Report.shards_total, Report.request_id)
                .where(Report.id == report_id, Report.status == ReportStatus.running)
                .with_for_update()
            )
        ).one_or_none()
        if report is None:  # failed by another shard already, or deleted
            return True
        stores = _describe(StoreRange(failed.first_store, failed.end_store))
        why = f"shard {shard} of {report.shards_total} ({stores}): {reason}"
        await session.execute(
            sa.update(Report).where(Report.id == report_id).values(failed_values(why))
        )
    with request_context(report.request_id):
        log.warning("report %s: failed: %s", report_id, why)
    return True


@dataclass(frozen=True, slots=True)
class Sweep:
    requeued: list[tuple[UUID, int]] = field(default_factory=list)
    """(report, shard) of pending shards whose next attempt was not queued."""
    taken_over: list[tuple[UUID, int]] = field(default_factory=list)
    """Running shards whose lease ran out: their next attempt was queued."""
    failed: list[tuple[UUID, int]] = field(default_factory=list)
    """Shards out of attempts: their reports failed."""


async def sweep(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    look_up: LookUpShard,
    enqueue: EnqueueShard,
    max_attempts: int,
) -> Sweep:
    """Queue the next attempt of every shard of a running report that needs one, or fail the
    report if the shard has had them all: as `store_monitor.reports.sweep` does for reports."""
    async with reading(sessionmaker) as session:
        due = (
            await session.execute(
                sa.select(
                    ReportShard.report_id,
                    ReportShard.shard,
                    ReportShard.status,
                    ReportShard.attempts,
                    ReportShard.error,
                )
                .join(Report, Report.id == ReportShard.report_id)
                .where(Report.status == ReportStatus.running, needs_attempt(ReportShard))
                .order_by(Report.created_at, ReportShard.shard)
            )
        ).all()
    swept = Sweep()
    for report_id, shard, status, attempts, error in due:
        attempt = await next_attempt(partial(look_up, report_id, shard), attempts, max_attempts)
        if attempt is None:
            continue
        if attempt > max_attempts:
            reason = gave_up(attempts, max_attempts, status, error)
            # Fenced: only if no attempt started, and none renewed its lease, since we looked.
            fence = (ReportShard.attempts == attempts, needs_attempt(ReportShard))
            if await _fail_report(sessionmaker, report_id, shard, reason, *fence):
                swept.failed.append((report_id, shard))
            continue
        await enqueue(report_id, shard, attempt)
        if status is ReportStatus.running:
            log.warning(
                "report %s: the lease of shard %d's attempt %d ran out (its runner died or "
                "stalled); attempt %d takes it over",
                report_id,
                shard,
                attempts,
                attempt,
            )
            swept.taken_over.append((report_id, shard))
        else:
            log.info("report %s: shard %d pending; attempt %d queued", report_id, shard, attempt)
            swept.requeued.append((report_id, shard))
    return swept
