"""Two real `store-monitor worker` processes sweeping the same due schedules: one report per
fire time, each computed."""

import asyncio
import os
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import sqlalchemy as sa

from store_monitor.db.models import Report, ReportSchedule, ReportStatus
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.schedules import rows
from store_monitor.schedules.cron import parse_schedule
from support.live import running
from support.service import REDIS_URL, empty_postgres

SCHEDULES = 20
HOUR = timedelta(hours=1)


async def test_two_workers_fire_each_due_schedule_once(postgres_url: str, tmp_path: Path) -> None:
    await empty_postgres(postgres_url)
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    sessions = create_sessionmaker(engine)
    try:
        async with sessions.begin() as session:
            for minute in range(SCHEDULES):
                weekly = parse_schedule(f"{minute} 6 * * 1", "America/New_York", min_interval=HOUR)
                await rows.create_schedule(session, weekly, key_name=None, max_per_key=SCHEDULES)
            # As if created a week ago: each missed its last weekly fire time.
            await session.execute(
                sa.update(ReportSchedule).values(
                    created_at=sa.func.now() - sa.text("interval '7 days'"),
                    next_due_at=sa.func.now() - sa.text("interval '1 minute'"),
                )
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith("STORE_MONITOR_")} | {
            "STORE_MONITOR_DATABASE_URL": postgres_url,
            "STORE_MONITOR_REDIS_URL": REDIS_URL,
            "STORE_MONITOR_QUEUE_NAME": f"store-monitor-test:{uuid4().hex}",
            "STORE_MONITOR_SWEEP_INTERVAL_SECONDS": "0.2",
            "STORE_MONITOR_LOG_LEVEL": "WARNING",
        }
        async with (
            running("worker", env=env, log=tmp_path / "worker-1.log"),
            running("worker", env=env, log=tmp_path / "worker-2.log"),
        ):
            async with asyncio.timeout(90):
                while True:
                    async with sessions() as session:
                        statuses = (await session.scalars(sa.select(Report.status))).all()
                    if len(statuses) >= SCHEDULES and all(
                        status is ReportStatus.complete for status in statuses
                    ):
                        break
                    await asyncio.sleep(0.2)
            # Both workers sweep many more times meanwhile: nothing fires again.
            await asyncio.sleep(1.5)
        async with sessions() as session:
            reports = set((await session.scalars(sa.select(Report.id))).all())
            fired = (await session.scalars(sa.select(ReportSchedule.last_report_id))).all()
            due = await session.scalar(
                sa.select(sa.func.count()).where(ReportSchedule.next_due_at <= sa.func.now())
            )
    finally:
        await engine.dispose()

    assert len(reports) == SCHEDULES
    assert set(fired) == reports
    assert due == 0
