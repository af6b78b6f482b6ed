"""Aggregate figures over the reports table, for the metrics endpoint."""

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import Report, ReportStatus


@dataclass(frozen=True, slots=True)
class ReportStats:
    """How many reports are in each status, and how long the complete ones took to compute."""

    by_status: dict[ReportStatus, int]
    duration_buckets: list[tuple[float, int]]
    """(bound in seconds, complete reports whose last attempt took at most that long), in the
    order of the bounds asked for: cumulative, as in a Prometheus histogram."""
    duration_count: int
    duration_sum: float
    """Seconds, summed over the complete reports."""


async def report_stats(session: AsyncSession, *, duration_bounds: Sequence[float]) -> ReportStats:
    """Two aggregate queries over the reports table (one row per report, so cheap)."""
    grouped = await session.execute(
        sa.select(Report.status, sa.func.count()).group_by(Report.status)
    )
    counts = dict(grouped.all())
    seconds = _duration_seconds()
    row = (
        await session.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(seconds), 0.0),
                *(sa.func.count().filter(seconds <= bound) for bound in duration_bounds),
            ).where(
                Report.status == ReportStatus.complete,
                Report.started_at.is_not(None),
                Report.finished_at.is_not(None),
            )
        )
    ).one()
    count, total, *within = row
    return ReportStats(
        by_status={status: counts.get(status, 0) for status in ReportStatus},
        duration_buckets=list(zip(duration_bounds, within, strict=True)),
        duration_count=count,
        duration_sum=float(total),
    )


def _duration_seconds() -> sa.ColumnElement[float]:
    start, end = Report.started_at, Report.finished_at
    return sa.cast(sa.extract("epoch", end - start), sa.Double)
