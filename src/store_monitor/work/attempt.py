"""The one attempt loop: claim, then work under a renewed lease within a timeout; an error fails
the work, a lost database or a stop gives it back for the sweep to queue the next attempt.
"""

import asyncio
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Final

from sqlalchemy.exc import DBAPIError

from store_monitor.db.models import ReportStatus
from store_monitor.db.session import transient_error
from store_monitor.logs import request_context
from store_monitor.work.lease import LeaseLost, Runner, under_lease
from store_monitor.work.table import Hold

log = logging.getLogger(__name__)

_DETAILS_IN_LOGS: Final = "the runner's log has the details under the report's request id"


@dataclass(frozen=True, slots=True)
class Claimed:
    request_id: str | None
    """The id of the request that created the work: the attempt logs under it."""


class Attempt(ABC):
    """One attempt at a row of leased work, as `run` makes it: its users give `claim` (what to
    read as it claims) and `work`; the lease's writes are the row's `Hold`'s."""

    def __init__(self, hold: Hold) -> None:
        self.hold = hold

    @property
    def label(self) -> str:
        return self.hold.label

    @property
    def number(self) -> int:
        """1 for the first attempt; fences every write of the attempt."""
        return self.hold.number

    @abstractmethod
    async def claim(self) -> Claimed | None:
        """Make the work running as this attempt, leased to the runner (`Hold.claim`); None if
        the work is not waiting for this attempt (made already, taken by another, deleted)."""

    @abstractmethod
    async def work(self) -> ReportStatus:
        """Compute and write; the status the work is left with. Raises `LeaseLost` if its
        fenced final write finds the attempt no longer holds the work."""

    async def renew(self) -> bool:
        """Extend this runner's lease; False if the attempt no longer holds it."""
        return await self.hold.renew()

    async def give_back(self, reason: str) -> None:
        """Make the work pending again, without a lease, if this runner's attempt holds it."""
        await self.hold.give_back(reason)

    async def fail(self, reason: str) -> bool:
        """Fail the work with `reason`, if the attempt holds it; False if it did not."""
        return await self.hold.fail(reason)


async def run(attempt: Attempt, runner: Runner) -> ReportStatus | None:
    """Claim and make `attempt`: the status it left its work with; None if it did not run (not
    needed, the database unavailable as it started, or the lease lost).

    While it computes, its lease is renewed; it is given `runner.timeout_seconds`. An error
    fails the work with a short reason (details in the logs); a transient database error, or
    a cancellation (the runner stopping), gives the work back (pending) for the sweep to queue
    the next attempt, within `runner.max_attempts`. Logs under the work's request id.
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
