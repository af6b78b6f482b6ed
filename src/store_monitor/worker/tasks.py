"""The worker's jobs: thin wrappers that turn Arq's arguments into a use case call."""

from typing import Any
from uuid import UUID

from store_monitor import reports
from store_monitor.worker import context


async def run_report(ctx: dict[str, Any], report_id: str) -> str | None:
    """Compute one report; the result Arq keeps is the report's final status."""
    settings = context.settings(ctx)
    status = await reports.run_report(
        context.sessionmaker(ctx),
        UUID(report_id),
        timeout_seconds=settings.job_timeout_seconds,
        max_attempts=settings.job_max_tries,
    )
    return None if status is None else status.value
