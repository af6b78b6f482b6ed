"""The service's other parts: `worker`, `db upgrade` and `openapi`."""

import json
import sys

from store_monitor.cli.console import fail, say
from store_monitor.cli.database import with_database


def worker() -> None:
    """Run an Arq worker that computes queued reports (needs STORE_MONITOR_REDIS_URL)."""
    from store_monitor.cli.configuration import service_settings
    from store_monitor.logs import configure_logging
    from store_monitor.work.arq import OutlastingWorker
    from store_monitor.worker import worker_settings

    settings = service_settings()
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
    from store_monitor.settings import Settings
    from store_monitor.web.app import create_app

    document = create_app(Settings()).openapi()
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False) + "\n")
