"""The FastAPI application: `create_app(settings)` and the lifespan that owns engine and queue."""

import asyncio
import contextlib
import logging
import secrets
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Final

import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor import ingest, jobs, leases, synthetic, ui
from store_monitor.api.auth import AUTH_ERRORS
from store_monitor.api.deps import STATE_KEY, AppState
from store_monitor.api.errors import documented, install_error_handlers
from store_monitor.api.hardening import Hardening
from store_monitor.api.limits import FailureLimiter
from store_monitor.api.observability import InstrumentedApp, Metrics
from store_monitor.api.routes import docs, health
from store_monitor.api.routes import ingest as ingest_routes
from store_monitor.api.routes import metrics as metrics_routes
from store_monitor.api.routes import reports as report_routes
from store_monitor.api.routes import trends as trend_routes
from store_monitor.db.embedded import database
from store_monitor.db.migrations import upgrade_to_head
from store_monitor.db.models import Poll
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.settings import AuthMode, Settings, get_settings
from store_monitor.sources import read_business_hours, read_polls, read_timezones

log = logging.getLogger(__name__)

# The embedded mode's first-start sample, loaded in well under a second. Its store ids have a
# prefix of their own, so that no upload (nor `store-monitor generate`) can share one with it.
SAMPLE_STORES: Final = 200
SAMPLE_DAYS: Final = 8
SAMPLE_STORE_PREFIX: Final = "sample-"
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
        # Served by the `docs` routes instead, from vendored assets rather than a CDN.
        docs_url=None,
        redoc_url=None,
        # The relative one first: the docs pages call the server that serves them, wherever it
        # runs; generated clients list the local default too, to pick or to replace.
        servers=[
            {"url": "/", "description": "The server this document is served from."},
            {
                "url": "http://127.0.0.1:8000",
                "description": "`make run` or `store-monitor serve`, with their defaults.",
            },
        ],
        openapi_tags=[
            {"name": "reports", "description": "Trigger a report, poll it, download it."},
            {"name": "ingest", "description": "Upload the input CSV files."},
            {"name": "health", "description": "Liveness and readiness probes."},
        ],
    )
    install_error_handlers(app)
    app.add_middleware(
        Hardening,
        host_names=settings.host_names,
        # With keys, a browser's request carries no credential: cross-site ones fail anyway.
        refuse_cross_site=settings.auth_mode is AuthMode.off,
    )
    protected = documented(AUTH_ERRORS)
    app.include_router(report_routes.router, responses=protected)
    app.include_router(trend_routes.router, responses=protected)
    app.include_router(ingest_routes.router, responses=protected)
    app.include_router(health.router)
    app.include_router(metrics_routes.router)
    app.include_router(docs.router)
    app.mount(docs.STATIC_PATH, docs.static_files(), name="static")
    ui.install(app)
    return app


def _lifespan(
    settings: Settings, metrics: Metrics
) -> Callable[[FastAPI], AbstractAsyncContextManager[dict[str, AppState]]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, AppState]]:
        problem = settings.auth_problem()
        if problem is not None:
            raise RuntimeError(problem)
        _log_access_mode(settings)
        async with database(settings.database_url, data_dir=settings.data_dir) as url:
            if settings.embedded_database:
                # The embedded mode has no deployment step: it brings its own schema up to date.
                await upgrade_to_head(url)
            async with _state(settings, metrics, url) as state:
                yield {STATE_KEY: state}

    return lifespan


def _session_secret(settings: Settings) -> bytes:
    if settings.secret_key is not None and settings.secret_key.get_secret_value().strip():
        return settings.secret_key.get_secret_value().encode()
    # Without a server secret (authentication off) sessions only carry the CSRF token: a key of
    # this process's own does, and a restart merely asks for a form to be sent again.
    return secrets.token_bytes(32)


def _log_access_mode(settings: Settings) -> None:
    if settings.auth_mode is AuthMode.required:
        log.info("authentication required: every route but /healthz and /readyz needs an API key")
        return
    level = logging.INFO if settings.host in ("127.0.0.1", "localhost", "::1") else logging.WARNING
    log.log(
        level,
        "authentication is off (STORE_MONITOR_AUTH=off): anyone who reaches %s:%d may load data "
        "and read every report",
        settings.host,
        settings.port,
    )


@asynccontextmanager
async def _state(settings: Settings, metrics: Metrics, url: str) -> AsyncIterator[AppState]:
    engine = create_engine(
        url,
        process_name="store-monitor-api",
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout_seconds,
    )
    try:
        sessionmaker = create_sessionmaker(engine)
        if settings.embedded_database and settings.sample_data:
            await _load_sample_if_empty(sessionmaker)
        queue = await _open_queue(settings, sessionmaker)
        try:
            async with _upkeep(settings, sessionmaker, queue):
                yield AppState(
                    settings=settings,
                    engine=engine,
                    sessionmaker=sessionmaker,
                    queue=queue,
                    metrics=metrics,
                    session_secret=_session_secret(settings),
                    limiter=FailureLimiter(
                        burst=settings.auth_failures_per_minute,
                        per_minute=settings.auth_failures_per_minute,
                    ),
                )
        finally:
            await queue.close()
    finally:
        await engine.dispose()


@asynccontextmanager
async def _upkeep(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], queue: jobs.ReportQueue
) -> AsyncIterator[None]:
    """In the embedded mode, the periodic upkeep the workers do otherwise (see `jobs.keep_up`)."""
    if not settings.in_process_jobs:
        yield
        return
    upkeep = jobs.Upkeep(
        interval_seconds=settings.sweep_interval_seconds,
        max_attempts=settings.job_max_tries,
        retention=timedelta(days=settings.report_retention_days),
        poll_retention_days=settings.poll_retention_days,
    )
    # This process is the only runner: whatever is unfinished was cut short by its previous
    # run, and is queued again before the first request.
    await jobs.upkeep_round(sessionmaker, queue, upkeep)
    task = asyncio.create_task(jobs.keep_up(sessionmaker, queue, upkeep), name="report-upkeep")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _open_queue(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> jobs.ReportQueue:
    if settings.redis_url is not None:
        return await jobs.ArqQueue.connect(settings.redis_url, queue_name=settings.queue_name)
    runner = leases.Runner(
        owner=leases.runner_name(),
        lease_seconds=settings.lease_seconds,
        timeout_seconds=settings.job_timeout_seconds,
        max_attempts=settings.job_max_tries,
        shard_stores=settings.shard_stores,
    )
    return jobs.InProcessQueue(
        sessionmaker, runner=runner, concurrency=settings.max_concurrent_jobs
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
            store_id_prefix=SAMPLE_STORE_PREFIX,
        )
        polls = await asyncio.to_thread(read_polls, files.store_status)
        hours = await asyncio.to_thread(read_business_hours, files.menu_hours)
        zones = await asyncio.to_thread(read_timezones, files.timezones)
    async with sessionmaker.begin() as session:
        await ingest.ingest_polls(session, polls)
        await ingest.ingest_business_hours(session, hours)
        await ingest.ingest_timezones(session, zones)
    log.info("sample loaded: %d polls of %d stores", polls.height, SAMPLE_STORES)
