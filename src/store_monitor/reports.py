"""Report use cases: create, run (the job's body), read, stream as CSV, sweep up orphans.

A report's state lives in the `reports` table; a queue only carries report ids to a runner.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor.db.models import Report, ReportRow, ReportStatus
from store_monitor.db.report_data import load_report_inputs, replace_report_rows, report_rows_csv
from store_monitor.engine import compute_report
from store_monitor.logs import request_context, request_id

log = logging.getLogger(__name__)

UNFINISHED: Final = (ReportStatus.pending, ReportStatus.running)
_MAX_ERROR_CHARS: Final = 2000


class JobState(StrEnum):
    """What a queue knows of a report's job."""

    waiting = "waiting"
    running = "running"
    finished = "finished"
    """The queue ran the job to an end of its own (the report should be final by then)."""
    missing = "missing"
    """The queue never had the job, or has forgotten it."""


@dataclass(frozen=True, slots=True)
class JobInfo:
    state: JobState
    outcome: str | None = None
    """For a finished job: how it ended, in the queue's words."""


Enqueue = Callable[[UUID], Awaitable[None]]
LookUpJob = Callable[[UUID], Awaitable[JobInfo]]


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
    """Insert a pending report and queue its job; with a known idempotency key, that report.

    Owns its transactions, unlike the other request-side use cases: the row must be committed
    before the job is queued, or a fast worker would look for a report that is not there yet.
    An existing unfinished report is queued again, which is harmless (queues deduplicate by
    report id) and heals a report whose first enqueue was lost.
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
            await enqueue(report.id)
        except Exception as error:
            reason = f"could not queue the report's job: {_describe(error)}"
            log.exception("report %s: %s", report.id, reason)
            await _finish_failed(sessionmaker, report.id, reason)
            raise NotEnqueued(report.id, reason) from error
    return Created(report=report, created=created)


async def get_report(session: AsyncSession, report_id: UUID) -> Report | None:
    return await session.get(Report, report_id)


async def report_csv(
    sessionmaker: async_sessionmaker[AsyncSession], report_id: UUID
) -> AsyncIterator[bytes]:
    """The report's CSV in chunks, read in a session of its own that lives as long as the stream."""
    async with sessionmaker() as session:
        async for chunk in report_rows_csv(session, report_id):
            yield chunk


async def run_report(
    sessionmaker: async_sessionmaker[AsyncSession],
    report_id: UUID,
    *,
    timeout_seconds: float,
    max_attempts: int,
) -> ReportStatus | None:
    """The job's body: compute the report and store its rows; returns the report's final status.

    Idempotent: running it again recomputes the report, overwriting its rows and status, with
    the same `now` as the first run. An error or a timeout fails the report with the reason.
    When cancelled (a worker shutting down) the report goes back to pending for the retry; a
    report whose job was interrupted `max_attempts` times fails instead of starting again.
    Returns None if there is no such report. Logs under the id of the request that created it.
    """
    try:
        claimed = await _claim(sessionmaker, report_id, max_attempts=max_attempts)
    except asyncio.CancelledError:
        # The claim may have committed just before the cancellation reached this task.
        await asyncio.shield(
            _set_pending(sessionmaker, report_id, "interrupted as it started: runner stopped")
        )
        raise
    if claimed is None:
        return await _give_up(sessionmaker, report_id)
    with request_context(claimed.request_id):
        return await _attempt(sessionmaker, report_id, claimed, timeout_seconds=timeout_seconds)


async def _attempt(
    sessionmaker: async_sessionmaker[AsyncSession],
    report_id: UUID,
    claimed: "_Claim",
    *,
    timeout_seconds: float,
) -> ReportStatus:
    as_of, attempt = claimed.pinned, claimed.attempt
    log.info("report %s: attempt %d started", report_id, attempt)
    try:
        async with asyncio.timeout(timeout_seconds) as deadline:
            await _compute_and_store(sessionmaker, report_id, as_of=as_of)
    except asyncio.CancelledError:
        # Shielded: the write must land although this task is being cancelled.
        await asyncio.shield(
            _set_pending(sessionmaker, report_id, f"attempt {attempt} interrupted: runner stopped")
        )
        raise
    except Exception as error:
        if isinstance(error, TimeoutError) and deadline.expired():
            reason = f"timed out after {timeout_seconds:g} s (attempt {attempt})"
        else:
            log.exception("report %s: attempt %d failed", report_id, attempt)
            reason = _describe(error)
        return await _fail(sessionmaker, report_id, reason)
    log.info("report %s: complete", report_id)
    return ReportStatus.complete


@dataclass(frozen=True, slots=True)
class Sweep:
    requeued: list[UUID] = field(default_factory=list)
    failed: list[UUID] = field(default_factory=list)


async def sweep_orphans(
    sessionmaker: async_sessionmaker[AsyncSession], *, look_up: LookUpJob, enqueue: Enqueue
) -> Sweep:
    """Requeue or fail unfinished reports that no job is working on.

    A report pending or running whose job the queue has lost (never queued, or its worker died
    and the queue forgot it) is queued again; `run_report` fails it once it has had its attempts.
    One whose job the queue finished without finishing the report (e.g. the queue's own timeout,
    or its retries exhausted) fails, with the queue's account of the job's end.
    Safe to run while workers run: a report that gets final meanwhile is left as it is.
    """
    async with sessionmaker() as session:
        unfinished = (
            await session.scalars(
                sa.select(Report.id)
                .where(Report.status.in_(UNFINISHED))
                .order_by(Report.created_at)
            )
        ).all()
    sweep = Sweep()
    for report_id in unfinished:
        job = await look_up(report_id)
        if job.state is JobState.missing:
            log.warning("report %s: unfinished and not queued; queuing it again", report_id)
            await enqueue(report_id)
            sweep.requeued.append(report_id)
        elif job.state is JobState.finished:
            outcome = job.outcome or "no reason given"
            reason = f"the job ended without finishing the report: {outcome}"
            if await _finish_failed(sessionmaker, report_id, reason):
                log.warning("report %s: %s", report_id, reason)
                sweep.failed.append(report_id)
    return sweep


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


@dataclass(frozen=True, slots=True)
class _Claim:
    pinned: datetime | None
    """The `now` to compute at: the requested `as_of`, else the `now` a previous run resolved."""
    attempt: int
    request_id: str | None


async def _claim(
    sessionmaker: async_sessionmaker[AsyncSession], report_id: UUID, *, max_attempts: int
) -> _Claim | None:
    """Mark the report running and count the attempt; None if there is no such report, or it is
    unfinished and has had all its attempts."""
    # One UPDATE first, no read before it: the row's lock makes two claims take turns.
    async with sessionmaker.begin() as session:
        row = (
            await session.execute(
                sa.update(Report)
                .where(
                    Report.id == report_id,
                    # A finished report may always be recomputed; only an unfinished one
                    # (whose runs keep being interrupted) runs out of attempts.
                    sa.or_(Report.attempts < max_attempts, Report.status.not_in(UNFINISHED)),
                )
                .values(
                    status=ReportStatus.running,
                    attempts=Report.attempts + 1,
                    started_at=datetime.now(UTC),
                    finished_at=None,
                    error=None,
                )
                .returning(
                    sa.func.coalesce(Report.as_of, Report.now), Report.attempts, Report.request_id
                )
            )
        ).one_or_none()
    if row is None:
        return None
    pinned, attempt, request = row
    return _Claim(pinned=pinned, attempt=attempt, request_id=request)


async def _give_up(
    sessionmaker: async_sessionmaker[AsyncSession], report_id: UUID
) -> ReportStatus | None:
    async with sessionmaker() as session:
        report = await session.get(Report, report_id)
    if report is None:
        log.warning("report %s: no such report, nothing to run", report_id)
        return None
    earlier = f" (last: {report.error})" if report.error else ""
    reason = f"gave up after {report.attempts} interrupted attempts{earlier}"
    if await _finish_failed(sessionmaker, report_id, reason):
        with request_context(report.request_id):
            log.warning("report %s: %s", report_id, reason)
        return ReportStatus.failed
    # Finished meanwhile, by another run.
    return await _status(sessionmaker, report_id)


async def _status(
    sessionmaker: async_sessionmaker[AsyncSession], report_id: UUID
) -> ReportStatus | None:
    async with sessionmaker() as session:
        return await session.scalar(sa.select(Report.status).where(Report.id == report_id))


async def _compute_and_store(
    sessionmaker: async_sessionmaker[AsyncSession], report_id: UUID, *, as_of: datetime | None
) -> None:
    async with sessionmaker() as session:
        inputs = await load_report_inputs(session, as_of=as_of)
    # Polars releases the GIL: computing in a thread keeps the event loop serving.
    result = await asyncio.to_thread(
        compute_report,
        inputs.polls,
        inputs.business_hours,
        inputs.timezones,
        as_of=inputs.now,
    )
    async with sessionmaker.begin() as session:
        await replace_report_rows(session, report_id, result.rows)
        await session.execute(
            sa.update(Report)
            .where(Report.id == report_id)
            .values(
                status=ReportStatus.complete,
                finished_at=datetime.now(UTC),
                now=result.now,
                row_count=result.rows.height,
                unknown_timezones=len(result.unknown_timezones),
                # Polls after `now` are never loaded, so the engine cannot count them.
                ignored_polls=inputs.ignored_polls,
                error=None,
            )
        )


async def _fail(
    sessionmaker: async_sessionmaker[AsyncSession], report_id: UUID, reason: str
) -> ReportStatus:
    await _finish_failed(sessionmaker, report_id, reason, only_unfinished=False)
    return ReportStatus.failed


async def _finish_failed(
    sessionmaker: async_sessionmaker[AsyncSession],
    report_id: UUID,
    reason: str,
    *,
    only_unfinished: bool = True,
) -> bool:
    """Mark the report failed and drop any rows of an earlier run; False if nothing changed."""
    condition = [Report.id == report_id]
    if only_unfinished:
        condition.append(Report.status.in_(UNFINISHED))
    async with sessionmaker.begin() as session:
        result = await session.execute(
            sa.update(Report)
            .where(*condition)
            .values(
                status=ReportStatus.failed,
                finished_at=datetime.now(UTC),
                error=reason[:_MAX_ERROR_CHARS],
                row_count=None,
            )
            .returning(Report.id)
        )
        if result.one_or_none() is None:
            return False
        await session.execute(sa.delete(ReportRow).where(ReportRow.report_id == report_id))
    return True


async def _set_pending(
    sessionmaker: async_sessionmaker[AsyncSession], report_id: UUID, reason: str
) -> None:
    async with sessionmaker.begin() as session:
        await session.execute(
            sa.update(Report)
            .where(Report.id == report_id, Report.status == ReportStatus.running)
            .values(status=ReportStatus.pending, error=reason)
        )


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
