"""The embedded mode's in-process job runner: jobs cut short by a shutdown are finished after
the next start."""

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.service import embedded, serve, wait_until_final
from store_monitor import reports
from store_monitor.db.migrations import upgrade_to_head
from store_monitor.db.models import Report, ReportStatus
from store_monitor.db.report_data import replace_report_rows
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.engine import compute_report
from store_monitor.jobs import InProcessQueue
from store_monitor.reports import Runner
from store_monitor.settings import Settings


async def _stored(settings: Settings, report_id: str) -> Report:
    engine = create_engine(settings.resolved_database_url, process_name="store-monitor-tests")
    try:
        async with create_sessionmaker(engine)() as session:
            report = await session.get(Report, UUID(report_id))
    finally:
        await engine.dispose()
    assert report is not None
    return report


async def test_shutdown_interrupts_jobs_and_the_next_start_finishes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = embedded(tmp_path, sample_data=True)

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.5)
        return compute_report(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr("store_monitor.reports.compute_report", slow)
        async with serve(settings) as client:
            report_id = (await client.post("/trigger_report")).json()["report_id"]
            while (await client.get(f"/reports/{report_id}")).json()["status"] != "Running":
                pass

    interrupted = await _stored(settings, report_id)
    assert interrupted.status is ReportStatus.pending
    assert interrupted.error == "attempt 1 was interrupted: its runner stopped"

    async with serve(settings) as client:
        metadata = await wait_until_final(client, report_id)
    assert metadata["status"] == "Complete"
    assert metadata["attempts"] == 2
    assert metadata["row_count"] == 200  # the sample data set, loaded on the first start


class _Hold:
    """A SQL function `hold()` that blocks its connection's thread until released: a query that
    is surely running when the job is cancelled."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()

    def __call__(self) -> int:
        self.entered.set()
        self.released.wait(10)
        return 1


@pytest.fixture
async def hold() -> AsyncIterator[_Hold]:
    hold = _Hold()
    yield hold
    hold.released.set()


@pytest.fixture
async def sqlite_sessions(
    tmp_path: Path, hold: _Hold
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """An empty embedded database whose connections know `hold()`."""
    url = embedded(tmp_path).resolved_database_url
    await upgrade_to_head(url)
    engine = create_engine(url, process_name="store-monitor-tests")

    @event.listens_for(engine.sync_engine, "connect")
    def add_hold(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.create_function("hold", 0, hold)

    yield create_sessionmaker(engine)
    await engine.dispose()


def _queue(sessions: async_sessionmaker[AsyncSession]) -> InProcessQueue:
    runner = Runner(owner="tests", lease_seconds=15.0, timeout_seconds=60.0, max_attempts=3)
    return InProcessQueue(sessions, runner=runner, concurrency=1)


async def _status(sessions: async_sessionmaker[AsyncSession], report_id: UUID) -> Report:
    async with sessions() as session:
        report = await session.get(Report, report_id)
    assert report is not None
    return report


async def test_a_job_stopped_mid_write_is_pending_at_once_on_sqlite(
    sqlite_sessions: async_sessionmaker[AsyncSession],
    hold: _Hold,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Cancelled inside a query of its write transaction, the job's connection is discarded
    # with that transaction open: it must not keep the write lock from the job's own
    # "back to pending" update (which would wait out SQLite's 30 s busy timeout, then fail).
    async def replace_then_hold(
        session: AsyncSession, report_id: UUID, rows: pl.DataFrame, **options: Any
    ) -> None:
        await replace_report_rows(session, report_id, rows, **options)
        await session.execute(sa.text("SELECT hold()"))

    monkeypatch.setattr("store_monitor.reports.replace_report_rows", replace_then_hold)
    queue = _queue(sqlite_sessions)
    created = await reports.create_report(sqlite_sessions, queue.enqueue_report, as_of=None)
    assert await asyncio.to_thread(hold.entered.wait, 10)

    closing = asyncio.create_task(queue.close())
    await asyncio.sleep(0)  # close() has cancelled the job; now let its query end
    hold.released.set()
    async with asyncio.timeout(5):
        await closing

    report = await _status(sqlite_sessions, created.report.id)
    assert report.status is ReportStatus.pending
    assert report.error == "attempt 1 was interrupted: its runner stopped"
    async with sqlite_sessions() as session:
        rows = await session.scalar(sa.select(sa.func.count()).select_from(sa.table("report_rows")))
    assert rows == 0  # the interrupted transaction's rows were rolled back


async def test_a_job_stopped_just_after_its_claim_is_pending(
    sqlite_sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_claim = reports._claim
    claimed = asyncio.Event()

    async def claim_then_wait(*args: Any, **kwargs: Any) -> Any:
        await real_claim(*args, **kwargs)
        claimed.set()
        await asyncio.Event().wait()  # the cancellation lands here, the claim committed

    monkeypatch.setattr(reports, "_claim", claim_then_wait)
    queue = _queue(sqlite_sessions)
    created = await reports.create_report(sqlite_sessions, queue.enqueue_report, as_of=None)
    await claimed.wait()
    assert (await _status(sqlite_sessions, created.report.id)).status is ReportStatus.running

    await queue.close()

    report = await _status(sqlite_sessions, created.report.id)
    assert report.status is ReportStatus.pending
    assert report.error == "attempt 1 was interrupted as it started: its runner stopped"
