"""`report.completed` and `report.failed`, recorded in the transaction that completes or fails
the report (reports in one job and in shards, and failures of every kind: errors, time-outs,
give-ups), from the report's row as that transaction wrote it."""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import Report
from store_monitor.webhooks.events import (
    ReportCompletedData,
    ReportCompletedEvent,
    ReportFailedData,
    ReportFailedEvent,
)
from store_monitor.webhooks.outbox import record


def csv_url(report_id: uuid.UUID, *, public_url: str) -> str:
    """Where the report's CSV is downloaded: under `public_url` (the service's base URL, e.g.
    `https://monitor.example.com`), or a path relative to the API's root when it is empty."""
    return f"{public_url.rstrip('/')}/reports/{report_id}/csv"


async def announce_completed(
    session: AsyncSession, report_id: uuid.UUID, *, public_url: str
) -> None:
    """Record `report.completed` for a report this transaction completed. Flushes."""
    await session.flush()
    report = await session.get_one(Report, report_id, populate_existing=True)
    data = ReportCompletedData(
        report_id=report_id,
        now=report.now,
        row_count=report.row_count or 0,
        incident_count=report.incident_count or 0,
        unknown_timezones=report.unknown_timezones or 0,
        ignored_polls=report.ignored_polls or 0,
        csv_url=csv_url(report_id, public_url=public_url),
    )
    await record(session, [ReportCompletedEvent(timestamp=datetime.now(UTC), data=data)])


async def announce_failed(session: AsyncSession, report_id: uuid.UUID, error: str) -> None:
    """Record `report.failed` for a report this transaction failed. Flushes."""
    now = await session.scalar(sa.select(Report.now).where(Report.id == report_id))
    data = ReportFailedData(report_id=report_id, now=now, error=error)
    await record(session, [ReportFailedEvent(timestamp=datetime.now(UTC), data=data)])
