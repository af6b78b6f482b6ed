"""The worker's jobs: thin wrappers that turn Arq's arguments into a use case call."""

from typing import Any
from uuid import UUID

from store_monitor import reports
from store_monitor.worker import context


async def run_report(ctx: dict[str, Any], report_id: str, attempt: int) -> str | None:
    """Make one attempt of a report; returns the status the attempt left it with, if it ran."""
    status = await reports.run_report(
        context.sessionmaker(ctx), UUID(report_id), attempt, context.runner(ctx)
    )
    return None if status is None else status.value
