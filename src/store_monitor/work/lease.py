"""Who runs leased work, the lease columns they write, and the heartbeat that renews a lease.

Leases are set and read by the database's clock: one for every runner, whatever their
machines' clocks say.
"""

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

import sqlalchemy as sa

from store_monitor.db.models import ReportStatus, UtcDateTime

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_SHARD_STORES: Final = 50_000
"""Stores per shard: a 14,000-store report is one job. At hourly polls a shard's computation
holds about 10 KB per store beside a worker's 0.5 GB: about 1 GB in all at this size."""

_MAX_ERROR_CHARS: Final = 500


@dataclass(frozen=True, kw_only=True, slots=True)
class Runner:
    """Who runs attempts, and within which limits."""

    owner: str
    """Names the runner in leases and logs; unique per process (see `runner_name`)."""
    lease_seconds: float
    """A lease lasts this long from its last renewal; it is renewed every third of it."""
    timeout_seconds: float
    """How long one attempt may take."""
    max_attempts: int
    shard_stores: int = DEFAULT_SHARD_STORES
    """A report of more stores is split into shards of about this many, each its own job."""
    public_url: str = ""
    """The service's base URL, for the links in the events its work announces; empty: links
    are paths relative to the API's root."""


def runner_name() -> str:
    """`host:pid:token`: which machine and process holds a lease, unique even if a pid recurs."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class LeaseLost(Exception):
    """The attempt no longer holds its work: taken over after its lease ran out, or deleted."""


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


def db_clock(*, plus: float = 0.0) -> sa.ColumnElement[datetime]:
    """The instant leases are set and read by, `plus` seconds later: the database's clock."""
    instant = sa.func.statement_timestamp(type_=UtcDateTime())
    return instant + sa.literal(timedelta(seconds=plus), sa.Interval()) if plus else instant


def app_clock() -> sa.BindParameter[datetime]:
    """The instant a statement runs, by this process's clock (a work row's start and end, as
    shown to users): bound as it runs, so that a statement built once can run many times."""
    return sa.bindparam(None, callable_=_utc_now, type_=UtcDateTime())


def _utc_now() -> datetime:
    return datetime.now(UTC)


def claimed_values(runner: Runner, attempt: int | sa.ColumnElement[int]) -> dict[str, object]:
    """The columns that make work running as `attempt`, leased to `runner`."""
    return {
        "status": ReportStatus.running,
        "attempts": attempt,
        "started_at": app_clock(),
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
    """The columns that fail work with `reason` (cut short)."""
    return {
        "status": ReportStatus.failed,
        "finished_at": app_clock(),
        "error": reason[:_MAX_ERROR_CHARS],
        "lease_owner": None,
        "lease_expires_at": None,
    }


def finished_values() -> dict[str, object]:
    """The columns that complete work (beside its own results), its lease given up."""
    return {
        "status": ReportStatus.complete,
        "finished_at": app_clock(),
        "error": None,
        "lease_owner": None,
        "lease_expires_at": None,
    }
