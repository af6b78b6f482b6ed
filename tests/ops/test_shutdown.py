"""Graceful shutdown of the real processes on SIGTERM: `store-monitor serve` finishes the request
in flight; `store-monitor worker` puts its report back in the queue for the next worker."""

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor import ingest
from store_monitor.db.models import Report, ReportStatus
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.logs import request_context
from store_monitor.report_runs import RUN_REPORT
from store_monitor.settings import Settings
from store_monitor.sources import read_business_hours, read_polls, read_timezones
from store_monitor.synthetic import GeneratedFiles
from store_monitor.work.arq import ArqQueue
from store_monitor.work.queue import JobState
from support.processes import environment, exit_of, free_port, ready
from support.service import embedded_data_dir, empty_postgres, postgres_mode, run_burst
from support.work import create_report

# The worker command, with the report's computation slowed down so that SIGTERM finds it busy.
_SLOW_WORKER = """
import sys, time
from store_monitor import shards
from store_monitor.cli import app

compute = shards.compute_report

def slow(*args, **kwargs):
    time.sleep(float(sys.argv[1]))
    return compute(*args, **kwargs)

shards.compute_report = slow
app(["worker"])
"""


def _json_lines(stderr: str) -> list[dict[str, Any]]:
    # Every line the process logged is JSON: stderr is a pipe, not a terminal.
    return [json.loads(line) for line in stderr.splitlines()]


async def test_serve_finishes_the_request_in_flight(
    tmp_path: Path, data_files: GeneratedFiles
) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "store_monitor.cli", "serve", "--port", str(port)),
        env=environment(data_dir=str(embedded_data_dir(tmp_path)), sample_data="false"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=20) as client:
            await ready(client)
            polls = data_files.store_status.read_bytes()
            sent_first = asyncio.Event()

            async def slow_body() -> AsyncIterator[bytes]:
                half = polls.index(b"\n", len(polls) // 2) + 1
                yield polls[:half]
                sent_first.set()
                await asyncio.sleep(1.0)
                yield polls[half:]

            upload = asyncio.create_task(
                client.post(
                    "/ingest/polls",
                    content=slow_body(),
                    headers={"Content-Type": "text/csv", "X-Request-ID": "in-flight-1"},
                )
            )
            await sent_first.wait()
            await asyncio.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            # No new connections once shutting down...
            await _refused(base_url)
            assert not upload.done()
            # ...but the request in flight is answered in full.
            response = await upload
        assert response.status_code == 200, response.text
        assert response.json()["rows_received"] == polls.count(b"\n") - 1
        assert response.headers["X-Request-ID"] == "in-flight-1"
        code, stderr = await exit_of(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    # uvicorn ends by raising the signal it caught again, for its parent to see.
    assert code == -signal.SIGTERM, stderr
    lines = _json_lines(stderr)
    messages = [line["message"] for line in lines]
    assert "Waiting for connections to close. (CTRL+C to force quit)" in messages
    assert "Application shutdown complete." in messages
    [access] = [
        line
        for line in lines
        if line["logger"] == "uvicorn.access" and "/ingest/polls" in line["message"]
    ]
    assert access["request_id"] == "in-flight-1"


async def _refused(base_url: str) -> None:
    async with asyncio.timeout(5), httpx.AsyncClient(base_url=base_url) as fresh:
        while True:
            try:
                await fresh.get("/healthz", headers={"Connection": "close"})
            except httpx.ConnectError:
                return
            await asyncio.sleep(0.05)


async def _report(sessions: async_sessionmaker[AsyncSession], report_id: UUID) -> Report:
    async with sessions() as session:
        report = await session.get(Report, report_id)
    assert report is not None
    return report


async def test_a_stopped_worker_hands_its_report_to_the_next(
    postgres_url: str, data_files: GeneratedFiles
) -> None:
    await empty_postgres(postgres_url)
    settings = postgres_mode(postgres_url)
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    sessions = create_sessionmaker(engine)
    assert settings.redis_url is not None
    # Not `runtime.build_work`'s: without a claim time no job here is ever stale, however slow
    # the machine.
    queue = await ArqQueue.connect(
        settings.redis_url,
        queue_name=settings.queue_name,
        job_timeout_seconds=settings.job_timeout_seconds,
    )
    try:
        await _load(sessions, data_files)
        with request_context("made-by-request-7"):
            created = await create_report(sessions, queue, as_of=None)
        report_id = created.report.id

        worker = await asyncio.create_subprocess_exec(
            *(sys.executable, "-c", _SLOW_WORKER, "1.5"),
            env=_worker_environment(settings),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        started_line = f"report {report_id}: attempt 1 started"
        try:
            # Its log, not the report's status: the status says `running` as soon as the claim
            # commits, before the attempt has left its claim; the log line comes after.
            logged = await _lines_until(worker, started_line)
            worker.send_signal(signal.SIGTERM)
            code, rest = await exit_of(worker)
            stderr = logged + rest
        finally:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()

        assert code == 0, stderr
        interrupted = await _report(sessions, report_id)
        assert interrupted.status is ReportStatus.pending
        assert interrupted.error == "attempt 1 was interrupted: its runner stopped"
        assert interrupted.lease_owner is None
        # Not queued yet: the sweep of the next worker to start (or of one running) does it.
        assert await queue.state(RUN_REPORT, (report_id,), 2) is JobState.missing
        [started] = [line for line in _json_lines(stderr) if line["message"] == started_line]
        # The worker is another process: the id came with the report, through the database.
        assert started["request_id"] == "made-by-request-7"

        await run_burst(settings)
        finished = await _report(sessions, report_id)
        assert (finished.status, finished.attempts, finished.error) == (
            ReportStatus.complete,
            2,
            None,
        )
    finally:
        await queue.close()
        await engine.dispose()


async def _lines_until(process: asyncio.subprocess.Process, message: str) -> str:
    """What `process` logged up to and including the line whose message is `message`."""
    assert process.stderr is not None
    lines: list[str] = []
    async with asyncio.timeout(30):
        while True:
            line = (await process.stderr.readline()).decode()
            assert line, "".join(lines)
            lines.append(line)
            if json.loads(line)["message"] == message:
                return "".join(lines)


def _worker_environment(settings: Settings) -> dict[str, str]:
    assert settings.database_url is not None
    assert settings.redis_url is not None
    return environment(
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        queue_name=settings.queue_name,
    )


async def _load(sessions: async_sessionmaker[AsyncSession], files: GeneratedFiles) -> None:
    async with sessions.begin() as session:
        await ingest.ingest_polls(session, read_polls(files.store_status))
        await ingest.ingest_business_hours(session, read_business_hours(files.menu_hours))
        await ingest.ingest_timezones(session, read_timezones(files.timezones))
