"""The sweep: queue the next attempt of every row of a work table that needs one, or give the
row up when it has had them all."""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor.db.models import ReportStatus
from store_monitor.db.session import reading
from store_monitor.work.queue import JobState, WorkQueue
from store_monitor.work.table import Key, WorkTable, fail

log = logging.getLogger(__name__)


async def next_attempt(
    look_up: Callable[[int], Awaitable[JobState]], attempts: int, max_attempts: int
) -> int | None:
    """The attempt to queue for work that needs one, after `attempts` started: the next, past
    any whose job went stale before it claimed the work; None if the job of one is waiting or
    running. More than `max_attempts` means the work has had them all."""
    attempt = attempts + 1
    while attempt <= max_attempts:
        state = await look_up(attempt)
        if state in (JobState.waiting, JobState.running):
            return None
        if state is not JobState.stale:
            return attempt
        attempt += 1
    return attempt


def gave_up(attempts: int, max_attempts: int, status: ReportStatus, error: str | None) -> str:
    """Why work that needs an attempt, after `attempts` started, has had them all."""
    if attempts < max_attempts:
        return (
            f"gave up after {max_attempts} attempts: the runners of the last ones died as they "
            "started"
        )
    if status is ReportStatus.running:
        return (
            f"gave up after {attempts} attempts: the runner of the last one stopped renewing its "
            "lease (killed, e.g. out of memory, or cut off)"
        )
    return f"gave up after {attempts} attempts" + (f" (last: {error})" if error else "")


@dataclass(frozen=True, slots=True)
class Sweep:
    requeued: list[Key] = field(default_factory=list)
    """Pending rows whose next attempt was not queued."""
    taken_over: list[Key] = field(default_factory=list)
    """Running rows whose lease ran out: their next attempt was queued."""
    failed: list[Key] = field(default_factory=list)
    """Rows out of attempts."""


async def sweep(
    sessionmaker: async_sessionmaker[AsyncSession],
    table: WorkTable,
    queue: WorkQueue,
    *,
    max_attempts: int,
) -> Sweep:
    """Queue the next attempt of every row of `table` that needs one, or fail it if it has had
    them all.

    A row needs one when it is pending (new, interrupted, or its attempt lost the database) and
    no job of its next attempt is queued; or running under a lease that ran out: its runner
    died or stalled, and the new attempt takes it over. An attempt whose job started but never
    claimed the row (its runner died as it started) is skipped. Safe to run in every runner at
    once: queues deduplicate the job of one attempt, and only one job can claim it.
    """
    model = table.model
    async with reading(sessionmaker) as session:
        due = (
            await session.execute(
                sa.select(*table.key, model.status, model.attempts, model.error)
                .where(table.needs_attempt())
                .order_by(*table.order_by)
            )
        ).all()
    swept = Sweep()
    for *values, status, attempts, error in due:
        key: Key = tuple(values)
        label = table.label(key)

        async def look_up(attempt: int, key: Key = key) -> JobState:
            return await queue.state(table.kind, key, attempt)

        attempt = await next_attempt(look_up, attempts, max_attempts)
        if attempt is None:
            continue
        if attempt > max_attempts:
            reason = gave_up(attempts, max_attempts, status, error)
            # Fenced: only if no attempt started, and none renewed its lease, since we looked.
            fence = (model.attempts == attempts, table.needs_attempt())
            if await fail(sessionmaker, table, key, reason, *fence):
                swept.failed.append(key)
            continue
        await queue.enqueue(table.kind, key, attempt)
        if status is ReportStatus.running:
            log.warning(
                "%s: the lease of attempt %d ran out (its runner died or stalled); "
                "attempt %d takes it over",
                label,
                attempts,
                attempt,
            )
            swept.taken_over.append(key)
        else:
            log.info("%s: pending; attempt %d queued", label, attempt)
            swept.requeued.append(key)
    return swept
