"""The FastAPI application: `create_app(settings)` and the lifespan that owns engine and queue."""

import asyncio
import logging
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor import ingest, jobs, maintenance, reports, synthetic
from store_monitor.api.deps import STATE_KEY, AppState
from store_monitor.api.errors import install_error_handlers
from store_monitor.api.observability import InstrumentedApp, Metrics
from store_monitor.api.routes import health
from store_monitor.api.routes import ingest as ingest_routes
from store_monitor.api.routes import metrics as metrics_routes
from store_monitor.api.routes import reports as report_routes
from store_monitor.db.migrations import upgrade_to_head
from store_monitor.db.models import Poll
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.settings import Settings, get_settings
from store_monitor.sources import read_business_hours, read_polls, read_timezones

log = logging.getLogger(__name__)

# The embedded mode's first-start sample: small enough to load in a few seconds on SQLite.
SAMPLE_STORES: Final = 200
SAMPLE_DAYS: Final = 8
_SAMPLE_SEED: Final = 0


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # Request ids and request metrics wrap the whole app (see InstrumentedApp).
    metrics = Metrics()
    app = InstrumentedApp(
        metrics=metrics,
        title="store-monitor",
        summary="Uptime and downtime of restaurants within their business hours.",
        version="0.1.0",
        lifespan=_lifespan(settings, metrics),
        openapi_tags=[
            {"name": "reports", "description": "Trigger a report, poll it, download it."},
            {"name": "ingest", "description": "Upload the input CSV files."},
            {"name": "health", "description": "Liveness and readiness probes."},
        ],
    )
    install_error_handlers(app)
    app.include_router(report_routes.router)
    app.include_router(ingest_routes.router)
    app.include_router(health.router)
    app.include_router(metrics_routes.router)
    return app


def _lifespan(
    settings: Settings, metrics: Metrics
) -> Callable[[FastAPI], AbstractAsyncContextManager[dict[str, AppState]]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, AppState]]:
        url = settings.resolved_database_url
        if settings.embedded_database:
            # The embedded mode has no deployment step: it brings its own schema up to date.
            await upgrade_to_head(url)
        engine = create_engine(url, process_name="store-monitor-api")
        try:
            sessionmaker = create_sessionmaker(engine)
            if settings.in_process_jobs:
                # No worker in this mode: this process keeps the poll partitions, as a worker's
                # start does (before the sample, whose polls then find their weeks).
                await maintenance.maintain_poll_partitions(
                    sessionmaker,
                    now=datetime.now(UTC),
                    retention_days=settings.poll_retention_days,
                )
            if settings.embedded_database and settings.sample_data:
                await _load_sample_if_empty(sessionmaker)
            queue = await _open_queue(settings, sessionmaker)
            try:
                if settings.in_process_jobs:
                    # This process is the only runner: whatever is unfinished was cut short
                    # by its previous run.
                    await reports.sweep_orphans(
                        sessionmaker, look_up=queue.job_info, enqueue=queue.enqueue_report
                    )
                yield {
                    STATE_KEY: AppState(
                        settings=settings,
                        engine=engine,
                        sessionmaker=sessionmaker,
                        queue=queue,
                        metrics=metrics,
                    )
                }
            finally:
                await queue.close()
        finally:
            await engine.dispose()

    return lifespan


async def _open_queue(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> jobs.ReportQueue:
    if settings.redis_url is not None:
        return await jobs.ArqQueue.connect(settings.redis_url, queue_name=settings.queue_name)
    return jobs.InProcessQueue(
        sessionmaker,
        timeout_seconds=settings.job_timeout_seconds,
        max_attempts=settings.job_max_tries,
        concurrency=settings.max_concurrent_jobs,
    )


async def _load_sample_if_empty(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        if await session.scalar(sa.select(sa.exists().select_from(Poll))):
            return
    log.info("no polls yet: loading a sample of %d stores over %d days", SAMPLE_STORES, SAMPLE_DAYS)
    with tempfile.TemporaryDirectory(prefix="store-monitor-sample-") as directory:
        files = await asyncio.to_thread(
            synthetic.generate,
            Path(directory),
            stores=SAMPLE_STORES,
            days=SAMPLE_DAYS,
            seed=_SAMPLE_SEED,
        )
        polls = await asyncio.to_thread(read_polls, files.store_status)
        hours = await asyncio.to_thread(read_business_hours, files.menu_hours)
        zones = await asyncio.to_thread(read_timezones, files.timezones)
    async with sessionmaker.begin() as session:
        await ingest.ingest_polls(session, polls)
        await ingest.ingest_business_hours(session, hours)
        await ingest.ingest_timezones(session, zones)
    log.info("sample loaded: %d polls of %d stores", polls.height, SAMPLE_STORES)
