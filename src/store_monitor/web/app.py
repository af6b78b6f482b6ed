"""The one FastAPI application: `create_app(settings)` mounts the JSON API and the dashboard
beside each other, and its lifespan owns the engine and the queue."""

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor import api, jobs, sample, ui
from store_monitor.db.embedded import database
from store_monitor.db.migrations import upgrade_to_head
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.runtime import build_work
from store_monitor.settings import AuthMode, Settings, get_settings
from store_monitor.web.deps import STATE_KEY, AppState
from store_monitor.web.errors import install_error_handlers
from store_monitor.web.failed_auth import FailureLimiter
from store_monitor.web.hardening import Hardening
from store_monitor.web.head import HeadAsGet
from store_monitor.web.observability import InstrumentedApp, Metrics
from store_monitor.web.rate_limits import RateLimiter
from store_monitor.work.queue import WorkQueue

log = logging.getLogger(__name__)


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
            {"name": "webhooks", "description": "Subscribe URLs to events, test them."},
            {
                "name": "events",
                "description": "What webhooks receive (sent by the service, signed per "
                "Standard Webhooks).",
            },
        ],
    )
    install_error_handlers(app)
    app.add_middleware(HeadAsGet)
    app.add_middleware(
        Hardening,
        host_names=settings.host_names,
        # With keys, a browser's request carries no credential: cross-site ones fail anyway.
        refuse_cross_site=settings.auth_mode is AuthMode.off,
    )
    api.install(app)
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
        sample_loaded = False
        if settings.embedded_database and settings.sample_data:
            sample_loaded = await sample.load_sample_if_empty(sessionmaker)
        work = await build_work(settings, sessionmaker)
        queue = work.queue
        redis_url, namespace = settings.redis_url, settings.queue_name
        trigger_limiter = RateLimiter(
            settings.trigger_rate, counts="trigger", redis_url=redis_url, namespace=namespace
        )
        webhook_test_limiter = RateLimiter(
            settings.webhook_test_rate,
            counts="webhook-test",
            redis_url=redis_url,
            namespace=namespace,
        )
        try:
            async with _upkeep(settings, sessionmaker, queue, work.upkeep):
                yield AppState(
                    settings=settings,
                    engine=engine,
                    sessionmaker=sessionmaker,
                    # A copy of the engine on its pool: connections are set to autocommit as they
                    # are taken out, and reset as they go back.
                    autocommit_sessionmaker=create_sessionmaker(
                        engine.execution_options(isolation_level="AUTOCOMMIT")
                    ),
                    queue=queue,
                    metrics=metrics,
                    session_secret=_session_secret(settings),
                    limiter=FailureLimiter(
                        burst=settings.auth_failures_per_minute,
                        per_minute=settings.auth_failures_per_minute,
                    ),
                    trigger_limiter=trigger_limiter,
                    webhook_test_limiter=webhook_test_limiter,
                    sample_loaded=sample_loaded,
                )
        finally:
            await trigger_limiter.close()
            await webhook_test_limiter.close()
            await queue.close()
    finally:
        await engine.dispose()


@asynccontextmanager
async def _upkeep(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: WorkQueue,
    upkeep: jobs.Upkeep,
) -> AsyncIterator[None]:
    """In the embedded mode, the periodic upkeep the workers do otherwise (see `jobs.keep_up`)."""
    if not settings.in_process_jobs:
        yield
        return
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
