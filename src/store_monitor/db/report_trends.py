"""Reads across reports, from their stored rows: a report's totals and worst stores, the report
it compares with, a store's figures in each report, and stores' weekly downtime in another report.

Every figure is aggregated in Postgres: a summary of 14,000 stores sends a few rows, not 14,000.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import Report, ReportRow, ReportStatus
from store_monitor.db.owners import visible_to
from store_monitor.db.report_views import FIGURE_COLUMNS, RowFigures

COMPARABLE_GAP: Final = timedelta(days=6)
"""A report compares with the latest complete report whose `now` is at least this much earlier:
a weekly schedule's previous report, give or take a day of ad-hoc timing."""


@dataclass(frozen=True, slots=True)
class ReportRef:
    id: uuid.UUID
    now: datetime


@dataclass(frozen=True, slots=True)
class WeekTotals:
    """A report's visible stores over the last week; hours as the report states them."""

    stores: int
    uptime_hours: float
    downtime_hours: float
    stores_with_downtime: int
    incidents: int

    @property
    def downtime_percent(self) -> float | None:
        """Downtime as a percentage of business time (uptime + downtime), to 2 decimals; None
        when the stores had no business time in the week."""
        business = self.uptime_hours + self.downtime_hours
        return None if business == 0 else round(100 * self.downtime_hours / business, 2)


NO_STORES: Final = WeekTotals(
    stores=0, uptime_hours=0.0, downtime_hours=0.0, stores_with_downtime=0, incidents=0
)


@dataclass(frozen=True, slots=True)
class StoreWeek:
    """A store's last week in a report; hours as the report states them."""

    store_id: str
    downtime_hours: float
    uptime_hours: float
    incidents: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreInReport(RowFigures):
    """A store's row of one complete report, with the report's id and `now`."""

    report: ReportRef


async def comparable_before(
    session: AsyncSession, report_id: uuid.UUID, now: datetime
) -> ReportRef | None:
    """The latest complete report whose `now` is at least `COMPARABLE_GAP` before `now` (of two
    at the same `now`, the later created); None if there is none."""
    found = (
        await session.execute(
            sa.select(Report.id, Report.now)
            .where(
                Report.status == ReportStatus.complete,
                Report.now <= now - COMPARABLE_GAP,
                Report.id != report_id,
            )
            .order_by(Report.now.desc(), Report.created_at.desc(), Report.id.desc())
            .limit(1)
        )
    ).one_or_none()
    return None if found is None else ReportRef(id=found.id, now=found.now)


async def week_totals(
    session: AsyncSession, report_ids: Sequence[uuid.UUID], *, owner_id: str | None
) -> dict[uuid.UUID, WeekTotals]:
    """Each report's totals over its stores (with `owner_id`, the owner's), in one statement;
    a report with no such stores has `NO_STORES`."""
    downtime = ReportRow.downtime_last_week
    found = await session.execute(
        sa.select(
            ReportRow.report_id,
            sa.func.count().label("stores"),
            sa.func.sum(ReportRow.uptime_last_week).label("uptime_hours"),
            sa.func.sum(downtime).label("downtime_hours"),
            sa.func.count().filter(downtime > 0).label("stores_with_downtime"),
            sa.func.sum(ReportRow.incidents_last_week).label("incidents"),
        )
        .where(ReportRow.report_id.in_(report_ids), visible_to(owner_id, ReportRow.store_id))
        .group_by(ReportRow.report_id)
    )
    totals = {
        row.report_id: WeekTotals(
            stores=row.stores,
            # Sums of figures rounded to 2 decimals, rounded alike (no 0.30000000000000004).
            uptime_hours=round(row.uptime_hours, 2),
            downtime_hours=round(row.downtime_hours, 2),
            stores_with_downtime=row.stores_with_downtime,
            incidents=row.incidents,
        )
        for row in found
    }
    return {report_id: totals.get(report_id, NO_STORES) for report_id in report_ids}


async def worst_stores(
    session: AsyncSession, report_id: uuid.UUID, *, owner_id: str | None, limit: int
) -> list[StoreWeek]:
    """Up to `limit` stores with the most downtime in the week (ties by store id); only stores
    with some downtime: a store that was never down is nobody's worst."""
    found = await session.execute(
        sa.select(
            ReportRow.store_id,
            ReportRow.downtime_last_week,
            ReportRow.uptime_last_week,
            ReportRow.incidents_last_week,
        )
        .where(
            ReportRow.report_id == report_id,
            ReportRow.downtime_last_week > 0,
            visible_to(owner_id, ReportRow.store_id),
        )
        .order_by(ReportRow.downtime_last_week.desc(), ReportRow.store_id.asc())
        .limit(limit)
    )
    return [StoreWeek(*row) for row in found]


async def weekly_downtime(
    session: AsyncSession, report_id: uuid.UUID, store_ids: Sequence[str]
) -> dict[str, float]:
    """The weekly downtime (hours) of those of `store_ids` that the report has, in one
    statement; a store it does not have is left out."""
    if not store_ids:
        return {}
    found = await session.execute(
        sa.select(ReportRow.store_id, ReportRow.downtime_last_week).where(
            ReportRow.report_id == report_id, ReportRow.store_id.in_(store_ids)
        )
    )
    return dict(found.all())


async def store_history(
    session: AsyncSession, store_id: str, *, owner_id: str | None, limit: int
) -> list[StoreInReport]:
    """The store's rows in the latest `limit` complete reports, by `now`, newest first (the
    later created first at the same `now`); empty if it is in none (or is not the owner's).
    The `report_rows` index on store_id finds them without reading other stores' rows."""
    found = await session.execute(
        sa.select(Report.id, Report.now, *(ReportRow.__table__.c[name] for name in FIGURE_COLUMNS))
        .join(Report, Report.id == ReportRow.report_id)
        .where(
            ReportRow.store_id == store_id,
            Report.status == ReportStatus.complete,
            visible_to(owner_id, ReportRow.store_id),
        )
        .order_by(Report.now.desc(), Report.created_at.desc(), Report.id.desc())
        .limit(limit)
    )
    # A complete report with rows has a `now`: only a report of no polls at all has none.
    return [
        StoreInReport(
            report=ReportRef(id=row.id, now=row.now),
            **{name: row._mapping[name] for name in FIGURE_COLUMNS},
        )
        for row in found
    ]
