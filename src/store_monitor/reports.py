"""Report use cases: create, run (the job's body, under a lease), list, read, its CSV file,
delete; and the sweep that takes over, requeues, fails and expires reports.

A report's state lives in the `reports` table; a queue only carries (report id, attempt) pairs
to a runner. A running attempt holds a lease on its report that its runner renews; a report
whose lease ran out is taken over by a new attempt, and every write of an attempt is fenced by
its number, so a runner that lost its lease changes nothing (see `store_monitor.leases`). A
report too large for one job runs in shards (see `store_monitor.shards`).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Final
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor import shards
from store_monitor.db.models import Report, ReportStatus
from store_monitor.db.report_data import (
    StoreRange,
    report_daily_csv,
    report_incidents_csv,
    report_rows,
    store_ranges,
)
from store_monitor.db.report_files import (
    StoredFile,
    encode_report_csv,
    read_report_file,
    store_report_file,
)
from store_monitor.db.report_views import StorePage, StoreSort, StoreView, store_page, store_view
from store_monitor.db.session import reading
from store_monitor.engine.localtime import computable_timezone
from store_monitor.engine.report import Report as ComputedReport
from store_monitor.frames import DEFAULT_TIMEZONE
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
from store_monitor.logs import request_context, request_id
from store_monitor.shards import EnqueueShard

log = logging.getLogger(__name__)

UNFINISHED: Final = (ReportStatus.pending, ReportStatus.running)


Enqueue = Callable[[UUID, int], Awaitable[None]]
"""Queue the job of attempt `attempt` of the report (1 for a new report); a no-op if that
attempt's job is already queued or running."""
LookUpJob = Callable[[UUID, int], Awaitable[JobState]]


class IdempotencyKeyReused(Exception):
    def __init__(self, key: str, report: Report) -> None:
        super().__init__(f"idempotency key {key!r} was used for a report with another as_of")
        self.key = key
        self.report = report


class NotEnqueued(Exception):
    """The report was created but its job could not be queued; the report is marked failed."""

    def __init__(self, report_id: UUID, reason: str) -> None:
        super().__init__(f"report {report_id} could not be queued: {reason}")
        self.report_id = report_id
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Created:
    report: Report
    created: bool
    """False when the idempotency key named an existing report, which is returned instead."""


async def create_report(
    sessionmaker: async_sessionmaker[AsyncSession],
    enqueue: Enqueue,
    *,
    as_of: datetime | None,
    idempotency_key: str | None = None,
) -> Created:
    """Insert a pending report and queue its first attempt; with a known idempotency key, that
    report.

    Owns its transactions, unlike the other request-side use cases: the row must be committed
    before the job is queued, or a fast worker would look for a report that is not there yet.
    An existing unfinished report has its next attempt queued again, which is harmless (queues
    deduplicate by report and attempt, and a job whose attempt was made does nothing) and heals
    a report whose first enqueue was lost.
    The report keeps the current request id (see `store_monitor.logs`): its job logs under it.
    """
    report = Report(as_of=as_of, idempotency_key=idempotency_key, request_id=request_id.get())
    created = True
    try:
        async with sessionmaker.begin() as session:
            session.add(report)
    except IntegrityError:
        if idempotency_key is None:
            raise
        async with sessionmaker() as session:
            existing = await session.scalar(
                sa.select(Report).where(Report.idempotency_key == idempotency_key)
            )
        if existing is None:  # deleted in between: nothing sensible to return
            raise
        if existing.as_of != as_of:
            raise IdempotencyKeyReused(idempotency_key, existing) from None
        report, created = existing, False
    if report.status in UNFINISHED:
        try:
            await enqueue(report.id, report.attempts + 1)
        except Exception as error:
            log.exception("report %s: could not queue its job", report.id)
            reason = f"could not queue the report's job ({type(error).__name__})"
            await _finish_failed(sessionmaker, report.id, reason, Report.status.in_(UNFINISHED))
            raise NotEnqueued(report.id, reason) from error
    return Created(report=report, created=created)


async def get_report(session: AsyncSession, report_id: UUID) -> Report | None:
    return await session.get(Report, report_id)


@dataclass(frozen=True, slots=True)
class ReportCursor:
    """Where a page of `list_reports` ended: its last report's creation instant and id."""

    created_at: datetime
    report_id: UUID


@dataclass(frozen=True, slots=True)
class ReportPage:
    reports: list[Report]
    next: ReportCursor | None
    """Where the next page starts; None on the last page."""


async def list_reports(
    session: AsyncSession,
    *,
    limit: int,
    status: ReportStatus | None = None,
    after: ReportCursor | None = None,
) -> ReportPage:
    """Reports newest first (ties by id), `limit` at most, those after the cursor if given.

    Keyset pagination: a page reads only its own rows through the (created_at, id) index, and
    reports created while a client pages through are neither skipped nor shown twice.
    """
    query = (
        sa.select(Report)
        .order_by(Report.created_at.desc(), Report.id.desc())
        # One more than asked: whether there is a next page, without a count.
        .limit(limit + 1)
    )
    if status is not None:
        query = query.where(Report.status == status)
    if after is not None:
        query = query.where(
            sa.tuple_(Report.created_at, Report.id) < sa.tuple_(after.created_at, after.report_id)
        )
    found = list((await session.scalars(query)).all())
    if len(found) <= limit:
        return ReportPage(reports=found, next=None)
    last = found[limit - 1]
    return ReportPage(reports=found[:limit], next=ReportCursor(last.created_at, last.id))


async def delete_report(session: AsyncSession, report_id: UUID) -> bool:
    """Delete the report and its rows (by the foreign key's cascade); False if there is none.

    A report being computed is deleted all the same: its attempt finds its lease gone at the
    next heartbeat and stops, and its final write, fenced, would find nothing to write to.
    Flushes, never commits.
    """
    deleted = await session.execute(
        sa.delete(Report).where(Report.id == report_id).returning(Report.id)
    )
    return deleted.one_or_none() is not None


async def delete_reports_created_before(
    sessionmaker: async_sessionmaker[AsyncSession], cutoff: datetime, *, batch: int = 10
) -> int:
    """Delete every report created before `cutoff`, `batch` reports (and their rows) per
    transaction so that none holds its locks for long; how many were deleted."""
    deleted = 0
    while True:
        oldest = (
            sa.select(Report.id)
            .where(Report.created_at < cutoff)
            .order_by(Report.created_at)
            .limit(batch)
        )
        async with sessionmaker.begin() as session:
            result = await session.execute(
                sa.delete(Report)
                .where(Report.id.in_(oldest.scalar_subquery()))
                .returning(Report.id)
            )
            count = len(result.all())
        deleted += count
        if count < batch:
            return deleted


async def report_file(
    session: AsyncSession, report_id: UUID, *, content: bool, owner_id: str | None = None
) -> StoredFile | None:
    """A complete report's CSV file, its gzip bytes too if `content`; None if the report is not
    (or no longer) complete. With `owner_id`, a file of that owner's stores only, made from the
    rows for the occasion (an owner's part is small; the whole is what is kept).

    One short statement on the session's connection, the bytes read whole: a download sends
    them after the session is closed, so a slow client holds memory (a third of the CSV) but
    no pooled connection, and status reads never wait behind downloads. (A separate pool for
    status reads would only move the queue: enough slow clients would still drain the other.)
    A report completed before report files existed gets its file here, built from its rows,
    once: written in the session's transaction, which the caller commits.
    """
    if owner_id is not None:
        if not await _still_complete(session, report_id):
            return None
        rows = await report_rows(session, report_id, owner_id=owner_id)
        info, compressed = await asyncio.to_thread(encode_report_csv, rows)
        return StoredFile(info=info, gzip=compressed if content else None)
    stored = await read_report_file(session, report_id, content=content)
    if stored is not None:
        return stored
    if not await _still_complete(session, report_id):
        return None
    log.info("report %s: complete without a file (an older version's); building it", report_id)
    rows = await report_rows(session, report_id)
    await store_report_file(session, report_id, rows, replace=False)
    return await read_report_file(session, report_id, content=content)


async def _still_complete(session: AsyncSession, report_id: UUID) -> bool:
    # Locked (shared) against a deletion while its file is read from the rows.
    status = await session.scalar(
        sa.select(Report.status).where(Report.id == report_id).with_for_update(read=True)
    )
    return status is ReportStatus.complete


async def incidents_csv(
    sessionmaker: async_sessionmaker[AsyncSession],
    report_id: UUID,
    *,
    store_id: str | None = None,
    owner_id: str | None = None,
) -> bytes:
    """The report's incidents (only `store_id`'s, if given; with `owner_id`, only that owner's
    stores) as the CLI's CSV. Read whole in a short session of its own, as `report_file` reads
    the report's: a download is sent with the connection back in the pool, so status reads
    never wait behind downloads (a few MB for 14,000 stores)."""
    async with sessionmaker() as session:
        chunks = report_incidents_csv(session, report_id, store_id=store_id, owner_id=owner_id)
        return b"".join([chunk async for chunk in chunks])


async def daily_csv(
    sessionmaker: async_sessionmaker[AsyncSession],
    report_id: UUID,
    *,
    store_id: str | None = None,
    owner_id: str | None = None,
) -> bytes:
    """The report's daily figures, narrowed and read as `incidents_csv` does its incidents."""
    async with sessionmaker() as session:
        chunks = report_daily_csv(session, report_id, store_id=store_id, owner_id=owner_id)
        return b"".join([chunk async for chunk in chunks])


@dataclass(frozen=True, slots=True)
class StoreDetails:
    view: StoreView
    timezone: str
    """The zone of the store's local dates: its own, or the default zone where it has none or
    an unknown one (as the engine decides)."""


async def store_details(
    session: AsyncSession, report_id: UUID, store_id: str, *, owner_id: str | None = None
) -> StoreDetails | None:
    """One store of a report: its figures, daily figures, incidents and time zone; None if the
    report has no row for it (or, with `owner_id`, the store is not the owner's)."""
    view = await store_view(session, report_id, store_id, owner_id=owner_id)
    if view is None:
        return None
    named = view.timezone_str
    return StoreDetails(
        view=view,
        timezone=named if named is not None and computable_timezone(named) else DEFAULT_TIMEZONE,
    )


async def report_stores(
    session: AsyncSession,
    report_id: UUID,
    *,
    sort: StoreSort = StoreSort.downtime_last_week,
    descending: bool = True,
    contains: str | None = None,
    offset: int = 0,
    limit: int = 50,
    owner_id: str | None = None,
) -> StorePage:
    """A page of a report's stores with their daily figures (with `owner_id`, of the owner's
    stores only): by default the worst downtime of the week first."""
    return await store_page(
        session,
        report_id,
        sort=sort,
        descending=descending,
        contains=contains,
        offset=offset,
        limit=limit,
        owner_id=owner_id,
    )


async def run_report(
    sessionmaker: async_sessionmaker[AsyncSession],
    report_id: UUID,
    attempt: int,
    runner: Runner,
    *,
    enqueue_shard: EnqueueShard | None = None,
) -> ReportStatus | None:
    """The job's body: make attempt `attempt` of the report, if the report is waiting for it.

    The attempt claims the report only if it has had fewer than `attempt` attempts and is
    pending, or running under a lease that ran out (its runner died or stalled): it becomes running,
    leased to `runner`. Any other job for the report (a duplicate, a stale retry, a report
    finished or deleted) does nothing. A report of at most `runner.shard_stores` stores is
    computed here: the rows and the `complete` status are written in one transaction that
    first checks, on the locked report row, that the attempt still holds it. A larger one is
    planned into shards (see `store_monitor.shards`), queued with `enqueue_shard` (without it,
    by the next sweep), and left running. Same inputs, same `now`: a takeover computes the
    same report.
    For errors, timeouts and cancellations, see `store_monitor.leases.run`.
    Returns the report's status as the job leaves it; None if the attempt did not run.
    """
    made = _ReportAttempt(sessionmaker, report_id, attempt, runner, enqueue_shard)
    return await run(made, runner)


@dataclass(slots=True)
class _ReportAttempt:
    sessionmaker: async_sessionmaker[AsyncSession]
    report_id: UUID
    number: int
    runner: Runner
    enqueue_shard: EnqueueShard | None
    _as_of: datetime | None = None
    """The `now` to compute at: the requested `as_of`, else the `now` a previous run resolved."""

    @property
    def label(self) -> str:
        return f"report {self.report_id}"

    async def claim(self) -> Claimed | None:
        if self.number > self.runner.max_attempts:
            return None
        # One UPDATE, no read before it: the conditions are checked on the row it locks.
        async with self.sessionmaker.begin() as session:
            row = (
                await session.execute(
                    sa.update(Report)
                    .where(
                        Report.id == self.report_id,
                        # Not only `number - 1`: an attempt whose runner died before its claim
                        # is skipped (see `next_attempt`).
                        Report.attempts < self.number,
                        _needs_attempt(),
                    )
                    .values(claimed_values(self.runner, self.number))
                    .returning(sa.func.coalesce(Report.as_of, Report.now), Report.request_id)
                )
            ).one_or_none()
        if row is None:
            return None
        self._as_of = row[0]
        return Claimed(request_id=row[1])

    async def work(self) -> ReportStatus:
        async with reading(self.sessionmaker) as session:
            ranges = await store_ranges(session, per_range=self.runner.shard_stores)
        if len(ranges) > 1:
            return await self._fan_out(ranges)
        result, inputs = await shards.compute_stores(self.sessionmaker, as_of=self._as_of)
        async with self.sessionmaker.begin() as session:
            # Polls after `now` are never loaded, so the engine cannot count them.
            if not await write_complete(
                session, self.report_id, self.number, result, inputs.ignored_polls
            ):
                raise LeaseLost
        return ReportStatus.complete

    async def _fan_out(self, ranges: list[StoreRange]) -> ReportStatus:
        async with self.sessionmaker.begin() as session:
            if not await shards.write_plan(
                session, self.report_id, self.number, as_of=self._as_of, ranges=ranges
            ):
                raise LeaseLost
        total = len(ranges)
        log.info("report %s: planned in %d shards", self.report_id, total)
        if self.enqueue_shard is None:
            return ReportStatus.running
        try:
            for shard in range(1, total + 1):
                await self.enqueue_shard(self.report_id, shard, 1)
        except Exception:
            # The shards are recorded, pending: the sweep queues those not queued here.
            log.warning(
                "report %s: could not queue its shards; the sweep will",
                self.report_id,
                exc_info=True,
            )
        return ReportStatus.running

    async def renew(self) -> bool:
        async with self.sessionmaker.begin() as session:
            renewed = await session.execute(
                sa.update(Report)
                .where(*_held(self.report_id, self.number), Report.lease_owner == self.runner.owner)
                .values(renewed_values(self.runner))
                .returning(Report.id)
            )
            return renewed.one_or_none() is not None

    async def give_back(self, reason: str) -> None:
        async with self.sessionmaker.begin() as session:
            await session.execute(
                sa.update(Report)
                .where(*_held(self.report_id, self.number), Report.lease_owner == self.runner.owner)
                .values(given_back_values(reason))
            )

    async def fail(self, reason: str) -> bool:
        return await _finish_failed(
            self.sessionmaker, self.report_id, reason, *_held(self.report_id, self.number)
        )


@dataclass(frozen=True, slots=True)
class Sweep:
    requeued: list[UUID] = field(default_factory=list)
    """Pending reports whose next attempt was not queued."""
    taken_over: list[UUID] = field(default_factory=list)
    """Running reports whose lease ran out: their next attempt was queued."""
    failed: list[UUID] = field(default_factory=list)
    """Reports out of attempts."""


async def sweep(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    look_up: LookUpJob,
    enqueue: Enqueue,
    max_attempts: int,
) -> Sweep:
    """Queue the next attempt of every report that needs one, or fail it if it has had them all.

    A report needs one when it is pending (new, interrupted, or its attempt lost the database)
    and no job of its next attempt is queued; or running under a lease that ran out: its runner
    died or stalled, and the new attempt takes the report over. An attempt whose job started
    but never claimed the report (its runner died as it started) is skipped. Safe to run in
    every runner at once: queues deduplicate the job of one attempt, and only one job can claim
    it.
    """
    async with reading(sessionmaker) as session:
        due = (
            await session.execute(
                sa.select(Report.id, Report.status, Report.attempts, Report.error)
                .where(_needs_attempt())
                .order_by(Report.created_at)
            )
        ).all()
    swept = Sweep()
    for report_id, status, attempts, error in due:
        attempt = await next_attempt(partial(look_up, report_id), attempts, max_attempts)
        if attempt is None:
            continue
        if attempt > max_attempts:
            reason = gave_up(attempts, max_attempts, status, error)
            if await _give_up(sessionmaker, report_id, attempts, reason):
                swept.failed.append(report_id)
            continue
        await enqueue(report_id, attempt)
        if status is ReportStatus.running:
            log.warning(
                "report %s: the lease of attempt %d ran out (its runner died or stalled); "
                "attempt %d takes it over",
                report_id,
                attempts,
                attempt,
            )
            swept.taken_over.append(report_id)
        else:
            log.info("report %s: pending; attempt %d queued", report_id, attempt)
            swept.requeued.append(report_id)
    return swept


def _needs_attempt() -> sa.ColumnElement[bool]:
    # A report in shards is left to its shards' sweep (see `store_monitor.shards`).
    in_shards = sa.and_(Report.status == ReportStatus.running, Report.shards_total.is_not(None))
    return sa.and_(needs_attempt(Report), sa.not_(in_shards))


async def _give_up(
    sessionmaker: async_sessionmaker[AsyncSession], report_id: UUID, attempts: int, reason: str
) -> bool:
    async with sessionmaker.begin() as session:
        # Fenced: only if no attempt started, and none renewed its lease, since the sweep looked.
        failed = await session.execute(
            sa.update(Report)
            .where(Report.id == report_id, Report.attempts == attempts, _needs_attempt())
            .values(failed_values(reason))
            .returning(Report.request_id)
        )
        row = failed.one_or_none()
    if row is None:
        return False
    with request_context(row.request_id):
        log.warning("report %s: %s", report_id, reason)
    return True


@dataclass(frozen=True, slots=True)
class ReportStats:
    """How many reports are in each status, and how long the complete ones took to compute."""

    by_status: dict[ReportStatus, int]
    duration_buckets: list[tuple[float, int]]
    """(bound in seconds, complete reports whose last attempt took at most that long), in the
    order of the bounds asked for: cumulative, as in a Prometheus histogram."""
    duration_count: int
    duration_sum: float
    """Seconds, summed over the complete reports."""


async def report_stats(session: AsyncSession, *, duration_bounds: Sequence[float]) -> ReportStats:
    """Two aggregate queries over the reports table (one row per report, so cheap)."""
    grouped = await session.execute(
        sa.select(Report.status, sa.func.count()).group_by(Report.status)
    )
    counts = dict(grouped.all())
    seconds = _duration_seconds()
    row = (
        await session.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(seconds), 0.0),
                *(sa.func.count().filter(seconds <= bound) for bound in duration_bounds),
            ).where(
                Report.status == ReportStatus.complete,
                Report.started_at.is_not(None),
                Report.finished_at.is_not(None),
            )
        )
    ).one()
    count, total, *within = row
    return ReportStats(
        by_status={status: counts.get(status, 0) for status in ReportStatus},
        duration_buckets=list(zip(duration_bounds, within, strict=True)),
        duration_count=count,
        duration_sum=float(total),
    )


def _duration_seconds() -> sa.ColumnElement[float]:
    start, end = Report.started_at, Report.finished_at
    return sa.cast(sa.extract("epoch", end - start), sa.Double)


async def write_complete(
    session: AsyncSession,
    report_id: UUID,
    attempt: int,
    result: ComputedReport,
    ignored_polls: int,
) -> bool:
    """The attempt's final write, in the caller's one transaction: the `complete` status, then
    the rows. Fenced: the status is written (and the report row locked) only if the report is
    still running as this attempt; else nothing is written and the answer is False.
    Flushes, never commits."""
    # The UPDATE comes first, no read before it: it is the check and the lock in one statement.
    held = await session.execute(
        sa.update(Report)
        .where(*_held(report_id, attempt))
        .values(
            status=ReportStatus.complete,
            finished_at=datetime.now(UTC),
            now=result.now,
            row_count=result.rows.height,
            unknown_timezones=len(result.unknown_timezones),
            ignored_polls=ignored_polls,
            incident_count=None if result.incidents is None else result.incidents.height,
            shards_total=1,
            shards_left=0,
            error=None,
            lease_owner=None,
            lease_expires_at=None,
        )
        .returning(Report.id)
    )
    if held.one_or_none() is None:
        return False
    # Same transaction as the status: a complete report always has its file.
    await store_report_file(session, report_id, result.rows)
    await shards.write_results(session, report_id, result)
    return True


async def _finish_failed(
    sessionmaker: async_sessionmaker[AsyncSession],
    report_id: UUID,
    reason: str,
    *conditions: sa.ColumnElement[bool],
) -> bool:
    """Mark the report failed if `conditions` hold; False if nothing changed. An unfinished
    report has no rows to drop: they are written together with the `complete` status."""
    async with sessionmaker.begin() as session:
        result = await session.execute(
            sa.update(Report)
            .where(Report.id == report_id, *conditions)
            .values(failed_values(reason))
            .returning(Report.id)
        )
        return result.one_or_none() is not None


def _held(report_id: UUID, attempt: int) -> tuple[sa.ColumnElement[bool], ...]:
    """The fence of every write of an attempt: the report still running as that attempt."""
    return (Report.id == report_id, *held(Report, attempt))
