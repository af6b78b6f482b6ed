"""Reads of one report for people: a page of its stores, sorted and filtered, and one store whole.

Every read is a range of the report's primary keys (report_id, store_id, ...): a store's page is
a handful of index look-ups, and a page of 14,000 stores one pass over the report's rows.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import ReportDay, ReportIncident, ReportRow, Timezone
from store_monitor.db.owners import visible_to


class StoreSort(StrEnum):
    """The columns a report's stores can be sorted by."""

    store_id = "store_id"
    uptime_last_hour = "uptime_last_hour"
    uptime_last_day = "uptime_last_day"
    uptime_last_week = "uptime_last_week"
    downtime_last_hour = "downtime_last_hour"
    downtime_last_day = "downtime_last_day"
    downtime_last_week = "downtime_last_week"
    incidents_last_day = "incidents_last_day"
    incidents_last_week = "incidents_last_week"


@dataclass(frozen=True, slots=True)
class Day:
    date: date
    """A local calendar date of the store."""
    uptime_hours: float
    downtime_hours: float


@dataclass(frozen=True, slots=True)
class Incident:
    started_at: datetime
    ended_at: datetime
    minutes: float


@dataclass(frozen=True, slots=True)
class RowFigures:
    """A store's figures in one report, in the report's units: the `report_rows` columns of the
    same names."""

    uptime_last_hour: float
    uptime_last_day: float
    uptime_last_week: float
    downtime_last_hour: float
    downtime_last_day: float
    downtime_last_week: float
    incidents_last_day: int
    incidents_last_week: int


FIGURE_COLUMNS: Final = tuple(field.name for field in fields(RowFigures))


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreFigures(RowFigures):
    """A store's line of the report and its local days."""

    store_id: str
    days: list[Day]


@dataclass(frozen=True, slots=True)
class StoreView:
    figures: StoreFigures
    timezone_str: str | None
    """The store's time zone as stored now; None when it has none."""
    incidents: list[Incident]


@dataclass(frozen=True, slots=True)
class StorePage:
    stores: list[StoreFigures]
    total: int
    """Stores of the report that match the filter, on every page together."""


_FIGURES: Final = (
    ReportRow.store_id,
    *(ReportRow.__table__.c[name] for name in FIGURE_COLUMNS),
    ReportDay.first_date,
    ReportDay.uptime_hours,
    ReportDay.downtime_hours,
)


# A store's row of `report_days`, beside its report row.
_DAYS_OF_ROW: Final = sa.and_(
    ReportDay.report_id == ReportRow.report_id, ReportDay.store_id == ReportRow.store_id
)


async def store_page(
    session: AsyncSession,
    report_id: uuid.UUID,
    *,
    sort: StoreSort,
    descending: bool,
    contains: str | None,
    offset: int,
    limit: int,
    owner_id: str | None = None,
) -> StorePage:
    """`limit` stores of the report from `offset`, in `sort` order (ties by store_id, ascending),
    only those whose id contains `contains` (as text, case-sensitive) and, with `owner_id`, the
    owner's."""
    conditions = [ReportRow.report_id == report_id, visible_to(owner_id, ReportRow.store_id)]
    if contains:
        conditions.append(ReportRow.store_id.contains(contains, autoescape=True))
    column = ReportRow.__table__.c[sort.value]
    order = [column.desc() if descending else column.asc()]
    if sort is not StoreSort.store_id:
        order.append(ReportRow.store_id.asc())
    found = await session.execute(
        sa.select(*_FIGURES)
        .outerjoin(ReportDay, _DAYS_OF_ROW)
        .where(*conditions)
        .order_by(*order)
        .offset(offset)
        .limit(limit)
    )
    total = await session.scalar(
        sa.select(sa.func.count()).select_from(ReportRow).where(*conditions)
    )
    return StorePage(stores=[_figures(row) for row in found.all()], total=total or 0)


async def store_view(
    session: AsyncSession,
    report_id: uuid.UUID,
    store_id: str,
    *,
    owner_id: str | None = None,
) -> StoreView | None:
    """The store's figures, days, incidents (in time order) and time zone in the report; None if
    the store is not in it (or, with `owner_id`, not the owner's)."""
    conditions = [
        ReportRow.report_id == report_id,
        ReportRow.store_id == store_id,
        visible_to(owner_id, ReportRow.store_id),
    ]
    found = (
        await session.execute(
            sa.select(*_FIGURES, Timezone.timezone_str)
            .outerjoin(ReportDay, _DAYS_OF_ROW)
            .outerjoin(Timezone, Timezone.store_id == ReportRow.store_id)
            .where(*conditions)
        )
    ).one_or_none()
    if found is None:
        return None
    incidents = await session.execute(
        sa.select(ReportIncident.started_at, ReportIncident.ended_at, ReportIncident.minutes)
        .where(ReportIncident.report_id == report_id, ReportIncident.store_id == store_id)
        .order_by(ReportIncident.started_at)
    )
    return StoreView(
        figures=_figures(found),
        timezone_str=found.timezone_str,
        incidents=[Incident(*incident) for incident in incidents.all()],
    )


async def report_has_store(
    session: AsyncSession, report_id: uuid.UUID, store_id: str, *, owner_id: str | None
) -> bool:
    """Whether the report has a row for the store (with `owner_id`: and it is the owner's)."""
    found = await session.scalar(
        sa.select(sa.literal(True)).where(
            ReportRow.report_id == report_id,
            ReportRow.store_id == store_id,
            visible_to(owner_id, ReportRow.store_id),
        )
    )
    return found is True


def _figures(row: sa.Row[*tuple[Any, ...]]) -> StoreFigures:
    first: date | None = row.first_date
    days = _days(first, row.uptime_hours or [], row.downtime_hours or [])
    return StoreFigures(
        store_id=row.store_id, days=days, **{name: row._mapping[name] for name in FIGURE_COLUMNS}
    )


def _days(first: date | None, uptime: Sequence[float], downtime: Sequence[float]) -> list[Day]:
    if first is None:
        return []
    return [
        Day(date=first + timedelta(days=index), uptime_hours=up, downtime_hours=down)
        for index, (up, down) in enumerate(zip(uptime, downtime, strict=True))
    ]
