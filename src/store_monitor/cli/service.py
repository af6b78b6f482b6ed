"""The service's parts: `serve` (the HTTP API), `worker`, `db upgrade` and `openapi`."""

import json
import sys
from typing import Annotated

import typer

from store_monitor.cli.console import fail, say
from store_monitor.cli.database import with_database

# uvicorn's h11 parser buffers at most this much of a request's head (the app checks the rest).
_MAX_HEAD_BYTES = 64 * 1024


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run the HTTP API (and, without STORE_MONITOR_REDIS_URL, its in-process job runner)."""
    import uvicorn

    from store_monitor.api.app import create_app
    from store_monitor.logs import configure_logging
    from store_monitor.settings import get_settings

    settings = get_settings()
    overrides = {"host": host, "port": port}
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    problem = settings.auth_problem()
    if problem is not None:
        fail(problem)
    if settings.embedded_database:
        from store_monitor.db.embedded import EmbeddedDatabaseError, check_free

        # The app would refuse a busy data directory too, but in a traceback of uvicorn's.
        try:
            check_free(settings.data_dir)
        except EmbeddedDatabaseError as error:
            fail(str(error))
    configure_logging(settings.log_level, json=settings.log_json)
    # On SIGTERM or SIGINT uvicorn stops accepting connections, lets the requests in flight
    # finish (for up to timeout_graceful_shutdown seconds), then runs the lifespan's shutdown.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's loggers propagate to ours: one format, with request ids
        timeout_graceful_shutdown=30,
        h11_max_incomplete_event_size=_MAX_HEAD_BYTES,
    )


def worker() -> None:
    """Run an Arq worker that computes queued reports (needs STORE_MONITOR_REDIS_URL)."""
    from store_monitor.logs import configure_logging
    from store_monitor.settings import get_settings
    from store_monitor.worker import OutlastingWorker, worker_settings

    settings = get_settings()
    try:
        options = worker_settings(settings)
    except ValueError as error:
        fail(str(error))
    configure_logging(settings.log_level, json=settings.log_json)
    # On SIGTERM or SIGINT Arq cancels the running jobs: each puts its report back to pending,
    # and a live worker's sweep queues its next attempt. Arq looks for new jobs every
    # `poll_delay` seconds, half a second by default: as long again before a report starts.
    # The worker outlasts Redis outages (see OutlastingWorker).
    OutlastingWorker(**options, poll_delay=0.05).run()


def db_upgrade() -> None:
    """Bring the database schema up to date (Alembic migrations to head).

    Without STORE_MONITOR_DATABASE_URL: the embedded server's, initialised if new."""
    from store_monitor.db.migrations import upgrade_to_head

    with_database(upgrade_to_head)
    say("database schema is up to date")


def openapi() -> None:
    """Print the service's OpenAPI document (the committed openapi.json is this output)."""
    from store_monitor.api.app import create_app
    from store_monitor.settings import Settings

    document = create_app(Settings()).openapi()
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False) + "\n")
