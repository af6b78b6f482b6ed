"""The Arq worker's configuration: jobs, queue, limits; the start-up that builds its engine and
starts its periodic upkeep (takeovers, requeues, retention)."""

import asyncio
import contextlib
import logging
from typing import Any

from arq.connections import RedisSettings

from store_monitor import jobs
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.runtime import build_work
from store_monitor.settings import Settings
from store_monitor.work.arq import arq_job_timeout
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
        "functions": [tasks.arq_job(table) for table in jobs.WORK_TABLES],
        "queue_name": settings.queue_name,
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "ctx": {context.SETTINGS: settings},
        "max_jobs": settings.max_concurrent_jobs,
        "job_timeout": arq_job_timeout(settings.job_timeout_seconds),
    }


async def startup(ctx: dict[str, Any]) -> None:
    settings = context.settings(ctx)
    assert settings.database_url is not None  # checked by worker_settings
    engine = create_engine(settings.database_url, process_name="store-monitor-worker")
    ctx[context.ENGINE] = engine
    ctx[context.SESSIONMAKER] = sessionmaker = create_sessionmaker(engine)
    work = await build_work(settings, sessionmaker, redis=context.redis(ctx))
    ctx[context.HANDLERS] = jobs.handlers(sessionmaker, work.runner, work.delivery, work.queue)
    # The first round before any job is picked: work left by a worker that died, or never
    # queued, is queued (or failed) now; then one round every interval, in every worker.
    swept = await jobs.upkeep_round(sessionmaker, work.queue, work.upkeep)
    if swept.requeued or swept.taken_over or swept.failed:
        log.warning(
            "unfinished work at start: %d queued again, %d taken over, %d failed",
            len(swept.requeued),
            len(swept.taken_over),
            len(swept.failed),
        )
    log.info("worker %s started", work.runner.owner)
    ctx[context.UPKEEP] = asyncio.create_task(
        jobs.keep_up(sessionmaker, work.queue, work.upkeep), name="report-upkeep"
    )


async def shutdown(ctx: dict[str, Any]) -> None:
    if context.UPKEEP in ctx:
        upkeep = context.upkeep(ctx)
        upkeep.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await upkeep
    if context.ENGINE in ctx:
        await context.engine(ctx).dispose()
