"""The Arq worker's configuration: jobs, queue, limits, and the start-up that builds its engine."""

import logging
from datetime import UTC, datetime
from typing import Any, Final

from arq.connections import RedisSettings
from arq.worker import func

from store_monitor import jobs, maintenance, reports
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.settings import Settings
from store_monitor.worker import context, tasks

log = logging.getLogger(__name__)

# run_report enforces the job timeout itself and records it in the report; Arq's own timeout,
# this much later, is only a backstop for a job that does not give way when cancelled.
_BACKSTOP_SECONDS: Final = 60.0


def worker_settings(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of `arq.worker.Worker` (what `arq.run_worker` accepts as settings)."""
    if settings.redis_url is None:
        raise ValueError("the worker needs a queue: set STORE_MONITOR_REDIS_URL")
    return {
        "functions": [func(tasks.run_report, name=jobs.RUN_REPORT)],
        "queue_name": settings.queue_name,
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "ctx": {context.SETTINGS: settings},
        "max_jobs": settings.max_concurrent_jobs,
        "job_timeout": settings.job_timeout_seconds + _BACKSTOP_SECONDS,
        # Arq retries a job whose worker died or was stopped under it. One try more than the
        # report's attempts, so that run_report is called once more to fail the report.
        "max_tries": settings.job_max_tries + 1,
    }


async def startup(ctx: dict[str, Any]) -> None:
    settings = context.settings(ctx)
    engine = create_engine(settings.resolved_database_url, process_name="store-monitor-worker")
    ctx[context.ENGINE] = engine
    ctx[context.SESSIONMAKER] = sessionmaker = create_sessionmaker(engine)
    # The coming weeks' partitions before any poll needs them; old weeks past the retention go.
    await maintenance.maintain_poll_partitions(
        sessionmaker, now=datetime.now(UTC), retention_days=settings.poll_retention_days
    )
    queue = jobs.ArqQueue(context.redis(ctx), queue_name=settings.queue_name)
    # Reports left unfinished by a worker that died, or never queued: requeue or fail them now.
    swept = await reports.sweep_orphans(
        sessionmaker, look_up=queue.job_info, enqueue=queue.enqueue_report
    )
    if swept.requeued or swept.failed:
        log.warning(
            "orphaned reports: %d queued again, %d failed", len(swept.requeued), len(swept.failed)
        )


async def shutdown(ctx: dict[str, Any]) -> None:
    if context.ENGINE in ctx:
        await context.engine(ctx).dispose()
