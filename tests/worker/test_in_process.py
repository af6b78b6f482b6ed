"""The embedded mode's in-process job runner: jobs cut short by a shutdown are finished after
the next start."""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor import jobs, report_runs
from store_monitor.db.embedded import embedded_postgres
from store_monitor.db.models import Report, ReportStatus
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.engine import compute_report
from store_monitor.runtime import delivery_policy
from store_monitor.settings import Settings
from store_monitor.work.lease import Runner
from store_monitor.work.queue import InProcessQueue, JobState
from store_monitor.work.table import Key
from support.service import embedded, empty_postgres, serve, wait_until_final
from support.work import create_report


async def _stored(settings: Settings, report_id: str) -> Report:
    """The report as stored in the embedded database (its server started again to read it)."""
    async with embedded_postgres(settings.data_dir) as url:
        engine = create_engine(url, process_name="store-monitor-tests")
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
        patch.setattr("store_monitor.shards.compute_report", slow)
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


@pytest.fixture
async def sessions(postgres_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The test run's database, emptied for this test."""
    await empty_postgres(postgres_url)
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    yield create_sessionmaker(engine)
    await engine.dispose()


def _queue(sessions: async_sessionmaker[AsyncSession]) -> InProcessQueue:
    # Not `runtime.build_work`'s, typed as any queue: these tests reach into its handlers.
    runner = Runner(owner="tests", lease_seconds=15.0, timeout_seconds=60.0, max_attempts=3)
    return jobs.in_process_queue(sessions, runner, delivery_policy(Settings()), concurrency=1)


async def _status(sessions: async_sessionmaker[AsyncSession], report_id: UUID) -> Report:
    async with sessions() as session:
        report = await session.get(Report, report_id)
    assert report is not None
    return report


async def test_a_job_stopped_just_after_its_claim_is_pending(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_claim = report_runs.ReportAttempt.claim
    claimed = asyncio.Event()

    async def claim_then_wait(*args: Any, **kwargs: Any) -> Any:
        await real_claim(*args, **kwargs)
        claimed.set()
        await asyncio.Event().wait()  # the cancellation lands here, the claim committed

    monkeypatch.setattr(report_runs.ReportAttempt, "claim", claim_then_wait)
    queue = _queue(sessions)
    created = await create_report(sessions, queue, as_of=None)
    await claimed.wait()
    assert (await _status(sessions, created.report.id)).status is ReportStatus.running

    await queue.close()

    report = await _status(sessions, created.report.id)
    assert report.status is ReportStatus.pending
    assert report.error == "attempt 1 was interrupted as it started: its runner stopped"


async def test_a_job_due_later_starts_then() -> None:
    queue = InProcessQueue(concurrency=1)
    started = asyncio.Event()

    async def handler(key: Key, attempt: int) -> None:
        started.set()

    queue.handlers["kind"] = handler
    due_at = datetime.now(UTC) + timedelta(seconds=0.5)
    await queue.enqueue("kind", ("key",), 1, due_at=due_at)
    await asyncio.sleep(0.2)
    assert not started.is_set()
    assert await queue.state("kind", ("key",), 1) is JobState.running
    await asyncio.wait_for(started.wait(), timeout=5)
    assert datetime.now(UTC) >= due_at
    await queue.close()
