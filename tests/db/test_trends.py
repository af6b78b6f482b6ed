"""Trends from stored report rows: a report's summary and the report it compares with, a store's
history, and the change in weekly downtime of a page of stores (in a fixed number of queries)."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from store_monitor import trends
from store_monitor.db.models import Report, ReportRow, ReportStatus, StoreOwner

from .frames import at

NOW = at("2023-01-25 12:00:00")


async def add_report(
    session: AsyncSession,
    now: datetime | None,
    rows: Sequence[tuple[str, float, float, int]] = (),
    *,
    status: ReportStatus = ReportStatus.complete,
    created_at: datetime | None = None,
) -> Report:
    """A report with a row per (store, weekly uptime h, weekly downtime h, incidents in the
    week); the other figures are derived from those, to tell them apart in the history."""
    report = Report(status=status, now=now, created_at=created_at or at("2023-02-01 00:00:00"))
    session.add(report)
    await session.flush()
    session.add_all(
        ReportRow(
            report_id=report.id,
            store_id=store,
            uptime_last_hour=up / 100,
            uptime_last_day=up / 10,
            uptime_last_week=up,
            downtime_last_hour=down / 100,
            downtime_last_day=down / 10,
            downtime_last_week=down,
            incidents_last_day=incidents // 2,
            incidents_last_week=incidents,
        )
        for store, up, down, incidents in rows
    )
    await session.flush()
    return report


THIS_WEEK = [
    ("a", 100.0, 0.0, 0),
    ("b", 90.1, 9.9, 3),
    ("c", 80.2, 19.8, 5),
    ("d", 95.0, 5.0, 1),
    ("e", 95.0, 5.0, 2),  # ties d: by store id, d first
    ("f", 99.0, 1.0, 1),
    ("g", 98.0, 2.0, 1),
]


async def test_a_summary_totals_the_week_and_compares_with_the_report_a_week_before(
    db_session: AsyncSession,
) -> None:
    report = await add_report(db_session, NOW, THIS_WEEK)
    previous = await add_report(
        db_session, NOW - timedelta(days=7), [("b", 95.0, 5.0, 2), ("c", 100.0, 0.0, 0)]
    )
    # Not comparable: too recent, not complete, later, or older than the previous one.
    await add_report(db_session, NOW - timedelta(days=5), [("b", 0.0, 50.0, 9)])
    await add_report(
        db_session,
        NOW - timedelta(days=6, hours=12),
        [("b", 0.0, 50.0, 9)],
        status=ReportStatus.failed,
    )
    await add_report(db_session, NOW + timedelta(days=1), [("b", 0.0, 50.0, 9)])
    await add_report(db_session, NOW - timedelta(days=14), [("b", 0.0, 50.0, 9)])

    summary = await trends.report_summary(db_session, report)

    week = summary.week
    assert (week.stores, week.stores_with_downtime, week.incidents) == (7, 6, 13)
    assert week.downtime_hours == 42.7  # rounded sum: not 42.699999999999996
    assert week.uptime_hours == 657.3
    assert week.downtime_percent == 6.1
    # At most five, worst first, ties by store id; "a" (never down) is nobody's worst.
    assert [store.store_id for store in summary.worst] == ["c", "b", "d", "e", "g"]
    worst = {store.store_id: store for store in summary.worst}
    assert (worst["b"].previous_downtime_hours, worst["b"].downtime_change_hours) == (5.0, 4.9)
    assert (worst["c"].previous_downtime_hours, worst["c"].downtime_change_hours) == (0.0, 19.8)
    assert (worst["d"].previous_downtime_hours, worst["d"].downtime_change_hours) == (None, None)
    assert summary.previous == trends.ReportRef(id=previous.id, now=NOW - timedelta(days=7))
    assert summary.previous_week is not None
    assert (summary.previous_week.stores, summary.previous_week.downtime_hours) == (2, 5.0)
    assert summary.previous_week.downtime_percent == 2.5
    assert summary.change == trends.WeekChange(
        downtime_hours=37.7, downtime_percent=3.6, stores_with_downtime=5, incidents=11
    )


async def test_of_two_reports_at_the_same_now_the_later_created_is_compared_with(
    db_session: AsyncSession,
) -> None:
    report = await add_report(db_session, NOW, THIS_WEEK)
    week_before = NOW - timedelta(days=6)  # six days exactly is comparable
    await add_report(db_session, week_before, [("b", 1.0, 1.0, 1)], created_at=at("2023-01-20"))
    later = await add_report(
        db_session, week_before, [("b", 2.0, 2.0, 1)], created_at=at("2023-01-21")
    )

    summary = await trends.report_summary(db_session, report)

    assert summary.previous is not None
    assert summary.previous.id == later.id


async def test_a_summary_without_a_previous_report_or_any_business_time(
    db_session: AsyncSession,
) -> None:
    report = await add_report(db_session, NOW, [("a", 0.0, 0.0, 0)])

    summary = await trends.report_summary(db_session, report)

    assert summary.week == trends.WeekTotals(
        stores=1, uptime_hours=0.0, downtime_hours=0.0, stores_with_downtime=0, incidents=0
    )
    assert summary.week.downtime_percent is None
    assert summary.worst == []
    assert (summary.previous, summary.previous_week, summary.change) == (None, None, None)
    # A report of no polls at all: no `now`, no rows, nothing to compare with.
    empty = await add_report(db_session, None)
    nothing = await trends.report_summary(db_session, empty)
    assert nothing.week.stores == 0
    assert (nothing.previous, nothing.change) == (None, None)


async def test_an_owners_summary_counts_only_the_owners_stores(db_session: AsyncSession) -> None:
    report = await add_report(db_session, NOW, THIS_WEEK)
    await add_report(db_session, NOW - timedelta(days=7), [("b", 95.0, 5.0, 2), ("c", 1.0, 1.0, 1)])
    db_session.add_all([StoreOwner(owner_id="brand", store_id=s) for s in ("a", "b", "x")])
    await db_session.flush()

    mine = await trends.report_summary(db_session, report, owner_id="brand")

    assert (mine.week.stores, mine.week.downtime_hours, mine.week.incidents) == (2, 9.9, 3)
    assert [store.store_id for store in mine.worst] == ["b"]
    assert mine.previous_week is not None
    assert (mine.previous_week.stores, mine.previous_week.downtime_hours) == (1, 5.0)
    assert mine.change is not None
    assert mine.change.downtime_hours == 4.9
    nobody = await trends.report_summary(db_session, report, owner_id="nobody")
    assert nobody.week.stores == 0
    assert nobody.week.downtime_percent is None
    assert nobody.worst == []


async def test_a_stores_history_is_its_rows_in_complete_reports_newest_first(
    db_session: AsyncSession,
) -> None:
    reports = [
        await add_report(db_session, NOW - timedelta(days=7 * weeks), [("s", 90.0, w, w)])
        for weeks, w in ((2, 2), (0, 0), (1, 1))
    ]
    await add_report(
        db_session, NOW + timedelta(days=1), [("s", 0.0, 9.0, 9)], status=ReportStatus.running
    )
    await add_report(db_session, NOW, [("other", 1.0, 1.0, 1)])

    history = await trends.store_history(db_session, "s")

    assert [entry.report.id for entry in history] == [reports[1].id, reports[2].id, reports[0].id]
    assert [entry.report.now for entry in history] == [
        NOW,
        NOW - timedelta(days=7),
        NOW - timedelta(days=14),
    ]
    newest = history[0]
    assert (newest.uptime_last_hour, newest.uptime_last_day, newest.uptime_last_week) == (
        0.9,
        9.0,
        90.0,
    )
    assert [entry.downtime_last_week for entry in history] == [0.0, 1.0, 2.0]
    assert [(e.incidents_last_day, e.incidents_last_week) for e in history] == [
        (0, 0),
        (0, 1),
        (1, 2),
    ]
    assert [e.report.id for e in await trends.store_history(db_session, "s", limit=2)] == [
        reports[1].id,
        reports[2].id,
    ]
    assert await trends.store_history(db_session, "never-reported") == []
    db_session.add(StoreOwner(owner_id="brand", store_id="s"))
    await db_session.flush()
    assert len(await trends.store_history(db_session, "s", owner_id="brand")) == 3
    assert await trends.store_history(db_session, "s", owner_id="franchise") == []


@contextmanager
def counted_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements sent while the block runs."""
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", count)


@pytest.mark.parametrize("page", [1, 50])
async def test_a_pages_downtime_changes_take_two_statements_whatever_its_length(
    db_session: AsyncSession, db_engine: AsyncEngine, page: int
) -> None:
    stores = [f"s{i:03}" for i in range(60)]
    report = await add_report(db_session, NOW, [(s, 90.0, 10.0, 1) for s in stores])
    previous = await add_report(
        db_session, NOW - timedelta(days=7), [(s, 96.0, 4.0, 1) for s in stores[1:]]
    )

    with counted_statements(db_engine) as statements:
        changes = await trends.downtime_changes(db_session, report, stores[:page])

    assert len(statements) == 2
    assert changes.previous == trends.ReportRef(id=previous.id, now=NOW - timedelta(days=7))
    assert changes.change_hours(stores[0], 10.0) is None  # not in the previous report
    if page > 1:
        assert changes.change_hours(stores[1], 10.0) == 6.0
        assert set(changes.previous_downtime_hours) == set(stores[1:page])


async def test_without_a_comparable_report_no_store_has_a_change(db_session: AsyncSession) -> None:
    report = await add_report(db_session, NOW, [("a", 1.0, 1.0, 1)])
    await add_report(db_session, NOW - timedelta(days=3), [("a", 1.0, 5.0, 1)])

    changes = await trends.downtime_changes(db_session, report, ["a"])

    assert changes.previous is None
    assert changes.change_hours("a", 1.0) is None
