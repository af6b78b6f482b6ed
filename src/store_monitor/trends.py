"""How stores are doing across reports, read from stored report rows (nothing is recomputed):
a report's summary beside the previous comparable report, a store's history, and the change in
each store's weekly downtime for a page of a report's stores."""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import Report
from store_monitor.db.report_trends import (
    ReportRef,
    StoreInReport,
    StoreWeek,
    WeekTotals,
    comparable_before,
    week_totals,
    weekly_downtime,
    worst_stores,
)
from store_monitor.db.report_trends import store_history as stored_history

WORST_STORES: Final = 5
HISTORY_MAX: Final = 100
"""Reports in a store's history at most."""


def downtime_change(downtime_hours: float, before: float | None) -> float | None:
    """Weekly downtime minus the previous comparable report's, to the report's 2 decimals; None
    when there is nothing to compare with."""
    return None if before is None else round(downtime_hours - before, 2)


@dataclass(frozen=True, slots=True)
class WeekChange:
    """This report's figures minus the previous comparable report's."""

    downtime_hours: float
    downtime_percent: float | None
    """In percentage points; None when either report had no business time."""
    stores_with_downtime: int
    incidents: int


@dataclass(frozen=True, slots=True)
class WorstStore(StoreWeek):
    """A store's week beside its downtime in the previous comparable report."""

    previous_downtime_hours: float | None
    """In the previous comparable report; None without one, or if the store was not in it."""

    @property
    def downtime_change_hours(self) -> float | None:
        return downtime_change(self.downtime_hours, self.previous_downtime_hours)


@dataclass(frozen=True, slots=True)
class Summary:
    week: WeekTotals
    worst: list[WorstStore]
    previous: ReportRef | None
    """The latest complete report whose `now` is at least six days earlier; None if none."""
    previous_week: WeekTotals | None
    change: WeekChange | None


async def report_summary(
    session: AsyncSession, report: Report, *, owner_id: str | None = None
) -> Summary:
    """The last week of a complete report over the stores the reader may see (with `owner_id`,
    the owner's), and the same of the previous comparable report with the change."""
    previous = await _comparable(session, report)
    ids = [report.id] if previous is None else [report.id, previous.id]
    totals = await week_totals(session, ids, owner_id=owner_id)
    worst = await worst_stores(session, report.id, owner_id=owner_id, limit=WORST_STORES)
    before = (
        {}
        if previous is None
        else await weekly_downtime(session, previous.id, [store.store_id for store in worst])
    )
    week = totals[report.id]
    previous_week = None if previous is None else totals[previous.id]
    return Summary(
        week=week,
        worst=[
            WorstStore(**asdict(store), previous_downtime_hours=before.get(store.store_id))
            for store in worst
        ],
        previous=previous,
        previous_week=previous_week,
        change=None if previous_week is None else _change(week, previous_week),
    )


async def _comparable(session: AsyncSession, report: Report) -> ReportRef | None:
    # A report of no polls at all has no `now`, and nothing to compare with.
    return None if report.now is None else await comparable_before(session, report.id, report.now)


def _change(week: WeekTotals, previous: WeekTotals) -> WeekChange:
    percent, previous_percent = week.downtime_percent, previous.downtime_percent
    return WeekChange(
        downtime_hours=round(week.downtime_hours - previous.downtime_hours, 2),
        downtime_percent=(
            None
            if percent is None or previous_percent is None
            else round(percent - previous_percent, 2)
        ),
        stores_with_downtime=week.stores_with_downtime - previous.stores_with_downtime,
        incidents=week.incidents - previous.incidents,
    )


async def store_history(
    session: AsyncSession, store_id: str, *, owner_id: str | None = None, limit: int = 12
) -> list[StoreInReport]:
    """The store's figures in each of the latest `limit` complete reports (at most
    `HISTORY_MAX`), newest `now` first; empty for a store never reported (or, with `owner_id`,
    not the owner's)."""
    return await stored_history(session, store_id, owner_id=owner_id, limit=min(limit, HISTORY_MAX))


@dataclass(frozen=True, slots=True)
class DowntimeChanges:
    """Stores' weekly downtime in the report a page of stores compares with."""

    previous: ReportRef | None
    previous_downtime_hours: dict[str, float]

    def change_hours(self, store_id: str, downtime_hours: float) -> float | None:
        """A store's weekly downtime (`downtime_hours`, of the page's report) minus the
        previous comparable report's; None without one, or if the store was not in it."""
        return downtime_change(downtime_hours, self.previous_downtime_hours.get(store_id))


async def downtime_changes(
    session: AsyncSession, report: Report, store_ids: Sequence[str]
) -> DowntimeChanges:
    """What the change in weekly downtime of each of `store_ids` (a page of the report's stores,
    already narrowed to what the reader may see) is measured against: two statements for the
    whole page, whatever its length."""
    previous = await _comparable(session, report)
    if previous is None:
        return DowntimeChanges(previous=None, previous_downtime_hours={})
    return DowntimeChanges(
        previous=previous,
        previous_downtime_hours=await weekly_downtime(session, previous.id, store_ids),
    )


__all__ = [
    "DowntimeChanges",
    "ReportRef",
    "StoreInReport",
    "Summary",
    "WeekChange",
    "WeekTotals",
    "WorstStore",
    "downtime_changes",
    "report_summary",
    "store_history",
]
