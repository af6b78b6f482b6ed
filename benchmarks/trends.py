"""The reads across reports at 14,000 stores: a report's summary (beside the previous week's
report) and stores' histories over twelve weekly reports, through the running service.

One report is computed by the service; eleven earlier weeks are copies of its rows under reports
whose `now` is a week apart each (as a weekly schedule would leave them), so that the history
and the comparison read as many rows as twelve real weeks would.
"""

import asyncio
import statistics
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from benchmarks.databases import autocommit, database, ingest_data_set
from benchmarks.processes import service
from benchmarks.report import data_set
from benchmarks.service import trigger_to_complete
from benchmarks.table import print_table
from store_monitor.db.models import Report, ReportRow
from store_monitor.db.session import create_engine, create_sessionmaker

WEEKS = 12
READS = 20


async def earlier_weeks(url: str, report_id: str, *, weeks: int) -> None:
    """`weeks - 1` complete reports, each a week before the last, with the report's rows."""
    engine = create_engine(url, process_name="store-monitor-bench")
    try:
        async with create_sessionmaker(engine).begin() as session:
            source = await session.get(Report, uuid.UUID(report_id))
            assert source is not None
            assert source.now is not None
            for week in range(1, weeks):
                copy = Report(
                    status=source.status,
                    created_at=source.created_at - timedelta(weeks=week),
                    now=source.now - timedelta(weeks=week),
                    row_count=source.row_count,
                    incident_count=source.incident_count,
                )
                session.add(copy)
                await session.flush()
                columns = [c.name for c in ReportRow.__table__.columns if c.name != "report_id"]
                await session.execute(
                    sa.insert(ReportRow).from_select(
                        ["report_id", *columns],
                        sa.select(
                            sa.literal(copy.id, sa.Uuid),
                            *(ReportRow.__table__.c[name] for name in columns),
                        ).where(ReportRow.report_id == source.id),
                    )
                )
    finally:
        await engine.dispose()
    # The planner's statistics, as autovacuum would have them for rows written a week apart.
    await autocommit("ANALYZE", url=url)


def median_seconds(client: httpx.Client, paths: list[str]) -> float:
    seconds = []
    for path in paths:
        started = time.perf_counter()
        client.get(path).raise_for_status()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def run(root: Path) -> None:
    eight_days = data_set(root, stores=14_000, days=8)
    with database() as url:
        asyncio.run(ingest_data_set(url, eight_days))
        with service(url) as client:
            _, report_id = trigger_to_complete(client)
            asyncio.run(earlier_weeks(url, report_id, weeks=WEEKS))
            summary = client.get(f"/reports/{report_id}/summary").raise_for_status().json()
            assert summary["previous"] is not None, "the summary found no previous week"
            ids = [
                line.partition(",")[0]
                for line in client.get(f"/reports/{report_id}/csv").text.splitlines()[1:]
            ]
            stores = ids[:: len(ids) // READS][:READS]
            summary_seconds = median_seconds(client, [f"/reports/{report_id}/summary"] * READS)
            history_seconds = median_seconds(
                client, [f"/stores/{store}/history?limit={WEEKS}" for store in stores]
            )
    print_table(
        f"Reads across reports, 14,000 stores, {WEEKS} weekly reports (medians of {READS} reads)",
        ["measure", "value", "target"],
        [
            [
                "summary (GET /reports/{id}/summary), with the week before",
                f"{summary_seconds * 1000:.0f} ms",
                "< 50 ms",
            ],
            [
                f"store history (GET /stores/{{store}}/history?limit={WEEKS})",
                f"{history_seconds * 1000:.0f} ms",
                "< 50 ms",
            ],
        ],
    )
