"""The jobs every runner runs: each kind of work's handler, and the periodic upkeep.

`handlers` maps each kind of leased work (reports, shards, live evaluations, webhook deliveries)
to its job's body, which the in-process queue and the Arq worker (`store_monitor.worker`) run;
`keep_up` fires the due schedules, sweeps the work tables (takeovers, requeues, give-ups) and
keeps the polls' partitions and the retention of reports and of the webhooks' outbox.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor import live, maintenance, reports
from store_monitor.db import live_state
from store_monitor.db.models import ReportStatus
from store_monitor.db.store_hours import StoreHoursCache
from store_monitor.report_runs import REPORTS, run_report
from store_monitor.schedules.firing import fire_due_schedules
from store_monitor.shards import SHARDS, run_shard
from store_monitor.webhooks.delivery import DELIVERIES, DeliveryPolicy, run_delivery
from store_monitor.webhooks.retention import delete_delivered_before
from store_monitor.work.lease import Runner
from store_monitor.work.queue import Handler, InProcessQueue, WorkQueue
from store_monitor.work.sweep import Sweep, sweep
from store_monitor.work.table import Key, key_id

log = logging.getLogger(__name__)

WORK_TABLES = (REPORTS, SHARDS, live.EVALUATIONS, DELIVERIES)
"""Swept in this order: a report's plan is queued before its shards are looked at."""


def in_process_queue(
    sessionmaker: async_sessionmaker[AsyncSession],
    runner: Runner,
    delivery: DeliveryPolicy,
    *,
    concurrency: int,
) -> InProcessQueue:
    """A queue that runs every kind's job in this process, `concurrency` at a time."""
    queue = InProcessQueue(concurrency=concurrency)
    queue.handlers.update(handlers(sessionmaker, runner, delivery, queue))
    return queue


def handlers(
    sessionmaker: async_sessionmaker[AsyncSession],
    runner: Runner,
    delivery: DeliveryPolicy,
    queue: WorkQueue,
) -> dict[str, Handler]:
    """Each kind's job body, for the runner of `queue`'s jobs; `queue` takes the shards a
    report's job plans, the live evaluation next in line after one, and the retries of
    deliveries."""

    async def report(key: Key, attempt: int) -> ReportStatus | None:
        return await run_report(sessionmaker, key_id(key), attempt, runner, queue=queue)

    async def shard(key: Key, attempt: int) -> ReportStatus | None:
        number = key[1]
        assert isinstance(number, int)
        return await run_shard(sessionmaker, key_id(key), number, attempt, runner)

    # This runner's copy of the business hours and zones, kept while they are unchanged.
    hours = StoreHoursCache()

    async def evaluation(key: Key, attempt: int) -> ReportStatus | None:
        return await live.run_evaluation(
            sessionmaker, key_id(key), attempt, runner, queue=queue, hours=hours
        )

    async def deliver(key: Key, attempt: int) -> ReportStatus | None:
        return await run_delivery(sessionmaker, key_id(key), attempt, runner, delivery, queue=queue)

    return {
        REPORTS.kind: report,
        SHARDS.kind: shard,
        live.EVALUATIONS.kind: evaluation,
        DELIVERIES.kind: deliver,
    }


@dataclass(frozen=True, kw_only=True, slots=True)
class Upkeep:
    """What every runner does every `interval_seconds`: see `keep_up`."""

    interval_seconds: float
    max_attempts: int
    delivery_max_attempts: int
    """Attempts per webhook delivery (reports and shards have `max_attempts`)."""
    retention: timedelta
    """Reports created longer ago are deleted."""
    event_retention: timedelta
    """Webhook deliveries finished longer ago are deleted, then the events left undelivered."""
    poll_retention_days: int | None = None
    """Poll partitions of weeks older than this are dropped; None keeps every poll."""


async def keep_up(
    sessionmaker: async_sessionmaker[AsyncSession], queue: WorkQueue, upkeep: Upkeep
) -> None:
    """Forever, once every interval (the first after one: start-up does a round of its own):
    make the coming weeks' poll partitions and drop those past the poll retention, fire the
    due schedules, sweep the work tables (takeovers, requeues, give-ups) and delete the expired
    reports, finished live evaluations, and the outbox's delivered deliveries and events.

    An error (the database or the queue away) is logged and the round tried again at the next
    interval, so the task outlives outages; cancel it to stop.
    """
    failing = False
    while True:
        await asyncio.sleep(upkeep.interval_seconds)
        try:
            await upkeep_round(sessionmaker, queue, upkeep)
        except Exception:
            # Once per outage with its stack, then quietly until it is over.
            if not failing:
                log.warning("periodic report sweep failed; trying again", exc_info=True)
            failing = True
        else:
            if failing:
                log.info("periodic report sweep works again")
            failing = False


async def upkeep_round(
    sessionmaker: async_sessionmaker[AsyncSession], queue: WorkQueue, upkeep: Upkeep
) -> Sweep:
    await maintenance.maintain_poll_partitions(
        sessionmaker, now=datetime.now(UTC), retention_days=upkeep.poll_retention_days
    )
    swept = Sweep()
    # Before the reports' sweep: a fired report whose job could not be queued is queued there.
    await fire_due_schedules(sessionmaker, queue)
    for table in WORK_TABLES:
        limit = upkeep.delivery_max_attempts if table is DELIVERIES else upkeep.max_attempts
        found = await sweep(sessionmaker, table, queue, max_attempts=limit)
        swept.requeued.extend(found.requeued)
        swept.taken_over.extend(found.taken_over)
        swept.failed.extend(found.failed)
    cutoff = datetime.now(UTC) - upkeep.retention
    if deleted := await reports.delete_reports_created_before(sessionmaker, cutoff):
        log.info(
            "deleted %d reports created before %s (retention)", deleted, f"{cutoff:%Y-%m-%d %H:%M}"
        )
    async with sessionmaker.begin() as session:
        await live_state.delete_evaluations_before(session, cutoff)
    outbox_cutoff = datetime.now(UTC) - upkeep.event_retention
    outbox = await delete_delivered_before(sessionmaker, outbox_cutoff)
    if outbox.deliveries or outbox.events:
        log.info(
            "deleted %d webhook deliveries and %d events from before %s (retention)",
            outbox.deliveries,
            outbox.events,
            f"{outbox_cutoff:%Y-%m-%d %H:%M}",
        )
    return swept
