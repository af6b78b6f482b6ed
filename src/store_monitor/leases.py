"""Who runs report work, and the leases they hold on it.

A running attempt (of a whole report, or of one shard of it) holds a lease that its runner
renews; work whose lease ran out is taken over by a new attempt, and every write of an attempt
is fenced by its number, so a runner that lost its lease changes nothing. Leases are set and
read by the database's clock: one for every runner, whatever their machines' clocks say.
"""

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from store_monitor.db.models import Report, ReportShard, ReportStatus, UtcDateTime
from store_monitor.db.session import transient_error
from store_monitor.logs import request_context

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_SHARD_STORES: Final = 50_000
"""Stores per shard: a 14,000-store report is one job. At hourly polls a shard's computation
holds about 10 KB per store beside a worker's 0.5 GB: about 1 GB in all at this size."""


class JobState(StrEnum):
    """What a queue knows of the job of one attempt."""

    waiting = "waiting"
    running = "running"
    finished = "finished"
    missing = "missing"
    """The queue never had the job, or has forgotten it."""
    stale = "stale"
    """Started longer ago than a runner takes to claim its work: if its attempt has not claimed
    the work, its runner died as it started (the queue keeps such a job for its whole timeout)."""


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


@dataclass(frozen=True, kw_only=True, slots=True)
class Runner:
    """Who runs report attempts, and within which limits."""

    owner: str
    """Names the runner in leases and logs; unique per process (see `runner_name`)."""
    lease_seconds: float
    """A lease lasts this long from its last renewal; it is renewed every third of it."""
    timeout_seconds: float
    """How long one attempt (of a report, or of a shard) may take."""
    max_attempts: int
    shard_stores: int = DEFAULT_SHARD_STORES
    """A report of more stores is split into shards of about this many, each its own job."""


def runner_name() -> str:
    """`host:pid:token`: which machine and process holds a lease, unique even if a pid recurs."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class LeaseLost(Exception):
    """The attempt no longer holds its work: taken over after its lease ran out, or deleted."""


_MAX_ERROR_CHARS: Final = 500
_DETAILS_IN_LOGS: Final = "the runner's log has the details under the report's request id"


@dataclass(frozen=True, slots=True)
class Claimed:
    request_id: str | None
    """The id of the request that created the report: the attempt logs under it."""


class Attempt(Protocol):
    """One attempt at some report work (a whole report, or one shard of one), as `run` makes it.

    Every method but `claim` writes only while the attempt holds its work: the work is running
    as this attempt (and, where it says so, under this runner's lease).
    """

    @property
    def label(self) -> str:
        """What the logs call the work: `report <id>`, say."""

    @property
    def number(self) -> int:
        """1 for the first attempt; fences every write of the attempt."""

    async def claim(self) -> Claimed | None:
        """Make the work running as this attempt, leased to the runner; None if the work is not
        waiting for this attempt (made already, taken by another, or deleted)."""

    async def work(self) -> ReportStatus:
        """Compute and write; the status the work is left with. Raises `LeaseLost` if its
        fenced final write finds the attempt no longer holds the work."""

    async def renew(self) -> bool:
        """Extend this runner's lease; False if the attempt no longer holds it."""

    async def give_back(self, reason: str) -> None:
        """Make the work pending again, without a lease, if this runner's attempt holds it."""

    async def fail(self, reason: str) -> bool:
        """Fail the report with `reason`, if the attempt holds its work; False if it did not."""


async def run(attempt: Attempt, runner: Runner) -> ReportStatus | None:
    """Claim and make `attempt`: the status it left its work with; None if it did not run (not
    needed, the database unavailable as it started, or the lease lost).

    While it computes, its lease is renewed; it is given `runner.timeout_seconds`. An error
    fails the report with a short reason (details in the logs); a transient database error, or
    a cancellation (the runner stopping), gives the work back (pending) for the sweep to queue
    the next attempt, within `runner.max_attempts`. Logs under the report's request id.
    """
    number = attempt.number
    try:
        claimed = await attempt.claim()
    except asyncio.CancelledError:
        # The claim may have committed just before the cancellation reached this task.
        interrupted = f"attempt {number} was interrupted as it started: its runner stopped"
        await asyncio.shield(attempt.give_back(interrupted))
        raise
    except Exception as error:
        if not transient_error(error):
            raise
        log.warning(
            "%s: attempt %d could not start, the database is unavailable; "
            "the sweep queues it again",
            attempt.label,
            number,
            exc_info=True,
        )
        return None
    if claimed is None:
        log.info(
            "%s: attempt %d not needed (made already, or no such report)", attempt.label, number
        )
        return None
    with request_context(claimed.request_id):
        return await _run_claimed(attempt, runner)


async def _run_claimed(attempt: Attempt, runner: Runner) -> ReportStatus | None:
    label, number = attempt.label, attempt.number
    log.info("%s: attempt %d started", label, number, extra={"runner": runner.owner})
    try:
        async with asyncio.timeout(runner.timeout_seconds) as deadline:
            status = await under_lease(
                attempt.work(),
                attempt.renew,
                lease_seconds=runner.lease_seconds,
                what=f"{label}: attempt {number}",
            )
    except asyncio.CancelledError:
        # Shielded: the write must land although this task is being cancelled.
        stopped = f"attempt {number} was interrupted: its runner stopped"
        await asyncio.shield(attempt.give_back(stopped))
        raise
    except LeaseLost:
        log.warning(
            "%s: attempt %d lost its lease (taken over by a later attempt, or the report "
            "was deleted); its result is dropped",
            label,
            number,
        )
        return None
    except Exception as error:
        if isinstance(error, TimeoutError) and deadline.expired():
            reason = f"timed out after {runner.timeout_seconds:g} s (attempt {number})"
            return await _fail(attempt, reason)
        if transient_error(error):
            log.warning(
                "%s: attempt %d lost the database; the sweep queues the next attempt",
                label,
                number,
                exc_info=True,
            )
            await _give_back_if_possible(attempt, f"attempt {number} lost its database connection")
            return ReportStatus.pending
        log.exception("%s: attempt %d failed", label, number)
        return await _fail(attempt, _reason(error, number))
    log.info("%s: %s", label, status.value)
    return status


async def _fail(attempt: Attempt, reason: str) -> ReportStatus | None:
    if await attempt.fail(reason):
        return ReportStatus.failed
    log.warning(
        "%s: attempt %d lost its lease; its failure is not recorded", attempt.label, attempt.number
    )
    return None


async def _give_back_if_possible(attempt: Attempt, reason: str) -> None:
    # The database may still be away: then the lease runs out and the sweep takes over.
    try:
        await attempt.give_back(reason)
    except Exception:
        log.warning(
            "%s: attempt %d could not give its work back; it waits for its lease to run out",
            attempt.label,
            attempt.number,
            exc_info=True,
        )


def _reason(error: Exception, attempt: int) -> str:
    """A short sentence for clients: never the statement, parameters or stack (those are logged)."""
    if isinstance(error, DBAPIError):
        return f"the database refused the report's query (attempt {attempt}); {_DETAILS_IN_LOGS}"
    return (
        f"the report could not be computed ({type(error).__name__}, attempt {attempt}); "
        f"{_DETAILS_IN_LOGS}"
    )


Renew = Callable[[], Awaitable[bool]]
"""Extend a lease by its length from now; False if the attempt no longer holds it."""


async def under_lease(work: Awaitable[T], renew: Renew, *, lease_seconds: float, what: str) -> T:
    """`work`'s result, with its lease renewed every third of `lease_seconds` beside it;
    `LeaseLost` (and `work` cancelled) as soon as a renewal finds the lease gone.

    A failed renewal (say the database is briefly away) is logged, naming `what`, and tried
    again at the next beat: if the lease runs out meanwhile another runner takes over, and
    fencing keeps this attempt from writing over the new one.
    """
    working = asyncio.ensure_future(work)
    heartbeat = asyncio.create_task(_heartbeat(renew, lease_seconds, what))
    try:
        done, _ = await asyncio.wait({working, heartbeat}, return_when=asyncio.FIRST_COMPLETED)
        if working in done:
            return working.result()
        raise LeaseLost
    finally:
        working.cancel()
        heartbeat.cancel()
        await asyncio.gather(working, heartbeat, return_exceptions=True)


async def _heartbeat(renew: Renew, lease_seconds: float, what: str) -> None:
    while True:
        await asyncio.sleep(lease_seconds / 3)
        try:
            if not await renew():
                return
        except Exception:
            log.warning("%s could not renew its lease", what, exc_info=True)


Leased = type[Report] | type[ReportShard]
"""Work that attempts claim under a lease: a report, or a shard of one (the same columns)."""


def needs_attempt(model: Leased) -> sa.ColumnElement[bool]:
    """Work waiting for an attempt: pending, or running under a lease that ran out (or none:
    a report left running by a version without leases)."""
    return sa.or_(
        model.status == ReportStatus.pending,
        sa.and_(
            model.status == ReportStatus.running,
            sa.or_(model.lease_expires_at.is_(None), model.lease_expires_at < db_clock()),
        ),
    )


def held(model: Leased, attempt: int) -> tuple[sa.ColumnElement[bool], ...]:
    """The fence of every write of an attempt: its work still running as that attempt."""
    return (model.attempts == attempt, model.status == ReportStatus.running)


def claimed_values(runner: Runner, attempt: int) -> dict[str, object]:
    """The columns that make work running as `attempt`, leased to `runner`."""
    return {
        "status": ReportStatus.running,
        "attempts": attempt,
        "started_at": datetime.now(UTC),
        "finished_at": None,
        "error": None,
        "lease_owner": runner.owner,
        "lease_expires_at": db_clock(plus=runner.lease_seconds),
    }


def renewed_values(runner: Runner) -> dict[str, object]:
    return {"lease_expires_at": db_clock(plus=runner.lease_seconds)}


def given_back_values(reason: str) -> dict[str, object]:
    """The columns that make work pending again, without a lease, saying why."""
    return {
        "status": ReportStatus.pending,
        "error": reason,
        "lease_owner": None,
        "lease_expires_at": None,
    }


def failed_values(reason: str) -> dict[str, object]:
    """The columns that fail a report, or a shard of one, with `reason` (cut short)."""
    return {
        "status": ReportStatus.failed,
        "finished_at": datetime.now(UTC),
        "error": reason[:_MAX_ERROR_CHARS],
        "row_count": None,
        "lease_owner": None,
        "lease_expires_at": None,
    }


def db_clock(*, plus: float = 0.0) -> sa.ColumnElement[datetime]:
    """The instant leases are set and read by, `plus` seconds later: the database's clock."""
    instant = sa.func.statement_timestamp(type_=UtcDateTime())
    return instant + sa.literal(timedelta(seconds=plus), sa.Interval()) if plus else instant
