"""The Arq worker's configuration: jobs, queue, limits; the start-up that builds its engine and
starts its periodic upkeep (takeovers, requeues, retention); a worker that rides out Redis
outages."""

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any, Final

from arq.connections import RedisSettings
from arq.worker import Worker, func
from redis.exceptions import RedisError

from store_monitor import jobs, leases
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.settings import Settings
from store_monitor.worker import context, tasks

log = logging.getLogger(__name__)


def worker_settings(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of `arq.worker.Worker` (what `arq.run_worker` accepts as settings)."""
    if settings.redis_url is None:
        raise ValueError("the worker needs a queue: set STORE_MONITOR_REDIS_URL")
    if settings.database_url is None:
        # The embedded server belongs to the one process that started it.
        raise ValueError("the worker needs a shared database: set STORE_MONITOR_DATABASE_URL")
    return {
        # Each job is one attempt, and the sweep queues the next one when it is due: Arq runs
        # a job once (a retry of its own would find the attempt made) and keeps no result, so
        # that the job of an attempt that did not run can be queued again.
        "functions": [
            func(tasks.run_report, name=jobs.RUN_REPORT, max_tries=1, keep_result=0),
            func(tasks.run_shard, name=jobs.RUN_SHARD, max_tries=1, keep_result=0),
        ],
        "queue_name": settings.queue_name,
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "ctx": {context.SETTINGS: settings},
        "max_jobs": settings.max_concurrent_jobs,
        "job_timeout": jobs.arq_job_timeout(settings.job_timeout_seconds),
    }


def _staleness(settings: Settings) -> jobs.Staleness:
    """When a started job whose attempt has not claimed its work is taken for dead."""
    return jobs.Staleness(
        job_timeout_seconds=settings.job_timeout_seconds, claim_seconds=settings.lease_seconds
    )


async def startup(ctx: dict[str, Any]) -> None:
    settings = context.settings(ctx)
    assert settings.database_url is not None  # checked by worker_settings
    engine = create_engine(settings.database_url, process_name="store-monitor-worker")
    ctx[context.ENGINE] = engine
    ctx[context.SESSIONMAKER] = sessionmaker = create_sessionmaker(engine)
    ctx[context.RUNNER] = runner = leases.Runner(
        owner=leases.runner_name(),
        lease_seconds=settings.lease_seconds,
        timeout_seconds=settings.job_timeout_seconds,
        max_attempts=settings.job_max_tries,
        shard_stores=settings.shard_stores,
    )
    ctx[context.QUEUE] = queue = jobs.ArqQueue(
        context.redis(ctx), queue_name=settings.queue_name, staleness=_staleness(settings)
    )
    upkeep = jobs.Upkeep(
        interval_seconds=settings.sweep_interval_seconds,
        max_attempts=settings.job_max_tries,
        retention=timedelta(days=settings.report_retention_days),
        poll_retention_days=settings.poll_retention_days,
    )
    # The first round before any job is picked: reports left by a worker that died, or never
    # queued, are queued (or failed) now; then one round every interval, in every worker.
    swept = await jobs.upkeep_round(sessionmaker, queue, upkeep)
    if swept.requeued or swept.taken_over or swept.failed:
        log.warning(
            "unfinished reports at start: %d queued again, %d taken over, %d failed",
            len(swept.requeued),
            len(swept.taken_over),
            len(swept.failed),
        )
    log.info("worker %s started", runner.owner)
    ctx[context.UPKEEP] = asyncio.create_task(
        jobs.keep_up(sessionmaker, queue, upkeep), name="report-upkeep"
    )


async def shutdown(ctx: dict[str, Any]) -> None:
    if context.UPKEEP in ctx:
        upkeep = context.upkeep(ctx)
        upkeep.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await upkeep
    if context.ENGINE in ctx:
        await context.engine(ctx).dispose()


class OutlastingWorker(Worker):
    """An Arq worker that outlasts Redis outages.

    Arq's poll loop lets a Redis error end the worker (and with it every report it computes).
    Here a failed poll is logged and tried again after a growing pause (0.1 s doubling up to
    `_MAX_PAUSE_SECONDS`); redis-py reconnects by itself on the next command, and the jobs
    queued meanwhile are picked up at the first poll that works. Reports being computed go on.
    """

    _MAX_PAUSE_SECONDS: Final = 5.0

    _pause: float = 0.0

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except (RedisError, OSError) as error:
            self._pause = min(max(self._pause * 2, 0.1), self._MAX_PAUSE_SECONDS)
            log.warning(
                "lost Redis (%s: %s); retrying in %.1f s",
                type(error).__name__,
                error,
                self._pause,
            )
            await asyncio.sleep(self._pause)
            return
        if self._pause:
            log.info("Redis is back; polling the queue again")
            self._pause = 0.0
