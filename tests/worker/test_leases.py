"""Leases on a real Arq worker (in this process) and Postgres: the heartbeat keeps a long report
its runner's, the final write is fenced by the attempt, a cut database connection costs one
attempt, a refused query fails the report without its SQL, and old reports are deleted."""

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor import jobs, report_runs
from store_monitor.db.models import Report, ReportRow, ReportStatus
from store_monitor.db.report_inputs import load_report_inputs
from store_monitor.engine import compute_report
from store_monitor.formats import report_csv_bytes
from store_monitor.logs import RequestIdFilter, request_context
from store_monitor.report_runs import REPORTS
from store_monitor.runtime import upkeep_of
from store_monitor.settings import Settings
from store_monitor.work.arq import ArqQueue
from store_monitor.work.lease import Runner
from store_monitor.work.table import Hold
from support.service import arq_worker, run_burst, stored_csv
from support.work import create_report

from .conftest import Frames, Sessions, load_report


async def _until_final(sessions: Sessions, report_id: UUID, *, within: float = 30) -> Report:
    async with asyncio.timeout(within):
        while True:
            report = await load_report(sessions, report_id)
            if report.status in (ReportStatus.complete, ReportStatus.failed):
                return report
            await asyncio.sleep(0.05)


async def test_the_heartbeat_keeps_a_long_report_its_runners(
    sessionmaker: Sessions,
    settings: Settings,
    queue: ArqQueue,
    frames: Frames,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The computation lasts four leases; a sweep runs every tenth of one.
    settings = settings.model_copy(update={"lease_seconds": 0.5, "sweep_interval_seconds": 0.05})

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(2.0)
        return compute_report(*args, **kwargs)

    monkeypatch.setattr("store_monitor.shards.compute_report", slow)
    created = await create_report(sessionmaker, queue, as_of=None)
    async with arq_worker(settings):
        report = await _until_final(sessionmaker, created.report.id)
    assert (report.status, report.attempts) == (ReportStatus.complete, 1)
    assert await stored_csv(sessionmaker, report.id) == report_csv_bytes(
        compute_report(*frames).rows
    )


async def test_an_attempt_that_lost_its_lease_writes_nothing(
    sessionmaker: Sessions, settings: Settings, frames: Frames
) -> None:
    report = Report()
    async with sessionmaker.begin() as session:
        session.add(report)
    first = Runner(owner="first", lease_seconds=30, timeout_seconds=30, max_attempts=3)
    second = Runner(owner="second", lease_seconds=30, timeout_seconds=30, max_attempts=3)
    latest = frames[0]["timestamp_utc"].max()
    assert isinstance(latest, datetime)
    stale = compute_report(*frames, as_of=latest - timedelta(days=1))

    hold = Hold(sessionmaker, REPORTS, (report.id,), 1, first)
    assert await report_runs.ReportAttempt(hold, None).claim() is not None
    # Attempt 1's runner goes silent; its lease runs out and attempt 2 takes the report over.
    async with sessionmaker.begin() as session:
        await session.execute(
            sa.update(Report).values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert await report_runs.run_report(sessionmaker, report.id, 2, second) is ReportStatus.complete
    taken_over = await load_report(sessionmaker, report.id)

    # Attempt 1 comes back with its (different) result: refused, and nothing of it lands.
    async with sessionmaker.begin() as session:
        assert not await report_runs.write_complete(session, report.id, 1, stale, 0)
    assert await report_runs.run_report(sessionmaker, report.id, 2, first) is None
    after = await load_report(sessionmaker, report.id)
    assert (after.status, after.attempts, after.finished_at, after.now) == (
        ReportStatus.complete,
        2,
        taken_over.finished_at,
        taken_over.now,
    )
    assert await stored_csv(sessionmaker, report.id) == report_csv_bytes(
        compute_report(*frames).rows
    )


async def test_a_cut_database_connection_costs_one_attempt(
    sessionmaker: Sessions,
    settings: Settings,
    queue: ArqQueue,
    frames: Frames,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings.model_copy(update={"sweep_interval_seconds": 0.1})
    calls = 0

    async def load_slowly_once(session: AsyncSession, **arguments: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            await session.execute(sa.text("SELECT pg_sleep(60) /* report query to cut */"))
        return await load_report_inputs(session, **arguments)

    monkeypatch.setattr("store_monitor.shards.load_report_inputs", load_slowly_once)
    created = await create_report(sessionmaker, queue, as_of=None)
    async with arq_worker(settings):
        async with asyncio.timeout(30):
            while True:
                if await _terminate_backend_running("report query to cut", sessionmaker):
                    break
                await asyncio.sleep(0.05)
        report = await _until_final(sessionmaker, created.report.id)

    assert (report.status, report.attempts, report.error) == (ReportStatus.complete, 2, None)
    assert await stored_csv(sessionmaker, report.id) == report_csv_bytes(
        compute_report(*frames).rows
    )


async def _terminate_backend_running(marker: str, sessions: Sessions) -> bool:
    """What an operator (or a failover) does: end the server process of the job's query."""
    async with sessions() as session:
        ended = await session.scalars(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND query LIKE '%' || :marker || '%'"
            ),
            {"marker": marker},
        )
        return any(ended.all())


async def test_a_refused_query_fails_the_report_with_a_sentence_not_its_sql(
    sessionmaker: Sessions,
    settings: Settings,
    queue: ArqQueue,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def refused(session: AsyncSession, **arguments: Any) -> Any:
        await session.execute(sa.text("SELECT 1 / 0 AS report_inputs"))

    monkeypatch.setattr("store_monitor.shards.load_report_inputs", refused)
    with request_context("request-with-a-bad-query"):
        created = await create_report(sessionmaker, queue, as_of=None)
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.ERROR, logger="store_monitor"):
        await run_burst(settings)

    report = await load_report(sessionmaker, created.report.id)
    assert (report.status, report.attempts) == (ReportStatus.failed, 1)
    assert report.error == (
        "the database refused the report's query (attempt 1); "
        "the runner's log has the details under the report's request id"
    )
    # The statement and the stack are in the log, logged under the report's request id.
    [record] = [r for r in caplog.records if r.getMessage().endswith("attempt 1 failed")]
    assert record.exc_text is not None
    assert "SELECT 1 / 0 AS report_inputs" in record.exc_text
    assert "division by zero" in record.exc_text
    assert getattr(record, "request_id", None) == "request-with-a-bad-query"


async def test_reports_past_their_retention_are_deleted_with_their_rows(
    sessionmaker: Sessions, settings: Settings, queue: ArqQueue
) -> None:
    now = datetime.now(UTC)
    old = Report(status=ReportStatus.complete, created_at=now - timedelta(days=31), row_count=1)
    recent = Report(status=ReportStatus.complete, created_at=now - timedelta(days=29), row_count=1)
    async with sessionmaker.begin() as session:
        session.add_all([old, recent])
        await session.flush()
        for report in (old, recent):
            session.add(
                ReportRow(
                    report_id=report.id,
                    store_id="1",
                    **dict.fromkeys(
                        [
                            f"{kind}_last_{span}"
                            for kind in ("uptime", "downtime")
                            for span in ("hour", "day", "week")
                        ],
                        0.0,
                    ),
                )
            )

    await jobs.upkeep_round(sessionmaker, queue, upkeep_of(Settings(report_retention_days=30)))

    async with sessionmaker() as session:
        kept = (await session.scalars(sa.select(Report.id))).all()
        rows = (await session.scalars(sa.select(ReportRow.report_id))).all()
    assert kept == rows == [recent.id]
