"""Report jobs on a real Arq worker (Redis) and Postgres: results, failures, timeouts, retries
after a worker stops, and the sweep at start-up."""

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import polars as pl
import pytest
from arq.constants import in_progress_key_prefix

import store_monitor.worker
from store_monitor import ingest, jobs, report_runs
from store_monitor.db.models import Report, ReportStatus
from store_monitor.engine import compute_report
from store_monitor.formats import report_csv_bytes
from store_monitor.live import EVALUATE_LIVE
from store_monitor.report_runs import REPORTS, RUN_REPORT
from store_monitor.runtime import build_work, runner_of
from store_monitor.settings import Settings, get_settings
from store_monitor.shards import RUN_SHARD
from store_monitor.webhooks.delivery import RUN_DELIVERY
from store_monitor.work.arq import ArqQueue, OutlastingWorker
from store_monitor.work.lease import DEFAULT_SHARD_STORES, Runner
from store_monitor.work.queue import InProcessQueue, JobState, job_id
from store_monitor.work.sweep import Sweep, sweep
from store_monitor.work.table import Key
from store_monitor.worker import context, tasks, worker_settings
from support.service import run_burst, stop_when, stored_csv
from support.work import RecordingQueue, create_report

from .conftest import Frames, Sessions, load_report


def _expected(frames: Frames) -> bytes:
    return report_csv_bytes(compute_report(*frames).rows)


async def _create(sessions: Sessions, queue: ArqQueue) -> UUID:
    created = await create_report(sessions, queue, as_of=None)
    return created.report.id


def _uuid(key: Key) -> UUID:
    assert isinstance(key[0], UUID)
    return key[0]


async def _insert(sessions: Sessions, **fields: Any) -> UUID:
    report = Report(**fields)
    async with sessions.begin() as session:
        session.add(report)
    return report.id


def _slow_compute(monkeypatch: pytest.MonkeyPatch, seconds: float) -> threading.Event:
    """Computations slowed by `seconds`; the event is set as one begins."""
    computing = threading.Event()

    def slow(*args: Any, **kwargs: Any) -> Any:
        computing.set()
        time.sleep(seconds)
        return compute_report(*args, **kwargs)

    monkeypatch.setattr("store_monitor.shards.compute_report", slow)
    return computing


async def test_worker_computes_the_report(
    sessionmaker: Sessions, settings: Settings, queue: ArqQueue, frames: Frames
) -> None:
    created = await create_report(sessionmaker, queue, as_of=None)
    report_id = created.report.id
    assert await queue.state(RUN_REPORT, (report_id,), 1) is JobState.waiting

    worker = await run_burst(settings)

    assert (worker.jobs_complete, worker.jobs_failed) == (1, 0)
    report = await load_report(sessionmaker, report_id)
    assert (report.status, report.attempts, report.error) == (ReportStatus.complete, 1, None)
    assert report.row_count == frames[0]["store_id"].n_unique()
    assert report.now == frames[0]["timestamp_utc"].max()
    assert await stored_csv(sessionmaker, report_id) == _expected(frames)
    assert (report.lease_owner, report.lease_expires_at) == (None, None)
    # No result kept: the job of an attempt that did not run can be queued again.
    assert await queue.state(RUN_REPORT, (report_id,), 1) is JobState.missing


async def test_a_job_whose_attempt_was_made_does_nothing(
    sessionmaker: Sessions, settings: Settings, frames: Frames
) -> None:
    report_id = await _insert(sessionmaker)
    work = await build_work(settings, sessionmaker)
    handlers = jobs.handlers(sessionmaker, work.runner, work.delivery, work.queue)
    ctx = {context.HANDLERS: handlers}
    run_report = tasks.arq_job(REPORTS).coroutine

    assert await run_report(ctx, str(report_id), 1) == "complete"
    first = await load_report(sessionmaker, report_id)
    first_csv = await stored_csv(sessionmaker, report_id)
    assert first.now is not None

    # A poll newer than the report's `now` arrives; then a duplicate of the job, and a job of
    # an attempt the report never needed.
    later = (
        frames[0]
        .head(1)
        .with_columns(
            pl.lit(first.now + timedelta(hours=1))
            .alias("timestamp_utc")
            .cast(frames[0]["timestamp_utc"].dtype)
        )
    )
    async with sessionmaker.begin() as session:
        await ingest.ingest_polls(session, later)
    assert await run_report(ctx, str(report_id), 1) is None
    assert await run_report(ctx, str(report_id), 2) is None
    await work.queue.close()

    second = await load_report(sessionmaker, report_id)
    assert await stored_csv(sessionmaker, report_id) == first_csv == _expected(frames)
    assert (second.attempts, second.finished_at, second.ignored_polls) == (
        1,
        first.finished_at,
        first.ignored_polls,
    )


async def test_a_taken_over_report_is_computed_at_the_same_now(
    sessionmaker: Sessions, settings: Settings, frames: Frames
) -> None:
    # Attempt 1 resolved `now`, then its runner stopped; polls arrived before attempt 2.
    report_id = await _insert(sessionmaker, status=ReportStatus.pending, attempts=1)
    runner = runner_of(settings)
    assert await report_runs.run_report(sessionmaker, report_id, 1, runner) is None
    first_now = frames[0]["timestamp_utc"].max()
    assert isinstance(first_now, datetime)
    async with sessionmaker.begin() as session:
        report = await session.get(Report, report_id)
        assert report is not None
        report.now = first_now
    later = (
        frames[0]
        .head(1)
        .with_columns(
            pl.lit(first_now + timedelta(hours=1))
            .alias("timestamp_utc")
            .cast(frames[0]["timestamp_utc"].dtype)
        )
    )
    async with sessionmaker.begin() as session:
        await ingest.ingest_polls(session, later)

    assert await report_runs.run_report(sessionmaker, report_id, 2, runner) is ReportStatus.complete
    report = await load_report(sessionmaker, report_id)
    assert (report.attempts, report.now, report.ignored_polls) == (2, first_now, 1)
    assert await stored_csv(sessionmaker, report_id) == _expected(frames)


async def test_a_failing_job_fails_the_report_with_its_reason(
    sessionmaker: Sessions,
    settings: Settings,
    queue: ArqQueue,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("engine exploded")

    monkeypatch.setattr("store_monitor.shards.compute_report", broken)
    report_id = (await create_report(sessionmaker, queue, as_of=None)).report.id

    await run_burst(settings)

    report = await load_report(sessionmaker, report_id)
    assert report.status is ReportStatus.failed
    # A sentence for clients; the exception and its stack are in the log, under the request id.
    assert report.error == (
        "the report could not be computed (RuntimeError, attempt 1); "
        "the runner's log has the details under the report's request id"
    )
    assert report.finished_at is not None
    assert report.row_count is None


async def test_a_job_over_its_time_fails_the_report(
    sessionmaker: Sessions,
    settings: Settings,
    queue: ArqQueue,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings.model_copy(update={"job_timeout_seconds": 0.3})
    _slow_compute(monkeypatch, 1.0)
    report_id = (await create_report(sessionmaker, queue, as_of=None)).report.id

    await run_burst(settings)

    report = await load_report(sessionmaker, report_id)
    assert report.status is ReportStatus.failed
    assert report.error == "timed out after 0.3 s (attempt 1)"


async def test_a_stopped_worker_requeues_its_job(
    sessionmaker: Sessions,
    settings: Settings,
    queue: ArqQueue,
    frames: Frames,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    computing = _slow_compute(monkeypatch, 0.5)
    report_id = (await create_report(sessionmaker, queue, as_of=None)).report.id
    worker = OutlastingWorker(**worker_settings(settings), handle_signals=False, poll_delay=0.02)
    # Stopped once its attempt computes (a worker shutting down cancels its jobs), not once the
    # report says running: the claim commits that before the attempt has left it.
    await stop_when(worker, asyncio.to_thread(computing.wait))

    report = await load_report(sessionmaker, report_id)
    assert report.status is ReportStatus.pending
    assert report.error == "attempt 1 was interrupted: its runner stopped"
    assert await queue.state(RUN_REPORT, (report_id,), 2) is JobState.missing

    monkeypatch.undo()
    await run_burst(settings)  # its start-up sweep queues attempt 2
    report = await load_report(sessionmaker, report_id)
    assert (report.status, report.attempts, report.error) == (ReportStatus.complete, 2, None)
    assert await stored_csv(sessionmaker, report_id) == _expected(frames)


async def test_orphans_are_swept_at_worker_start(
    sessionmaker: Sessions, settings: Settings, queue: ArqQueue, frames: Frames
) -> None:
    # Left running by a worker that died, its lease run out.
    died = await _insert(
        sessionmaker,
        status=ReportStatus.running,
        attempts=1,
        lease_owner="gone:1:abc",
        lease_expires_at=datetime.now(UTC) - timedelta(seconds=1),
    )
    # Committed, but the API died before queuing it.
    never_queued = await _insert(sessionmaker)
    # Out of attempts: the last one's runner died; the last one was interrupted.
    killed_thrice = await _insert(
        sessionmaker,
        status=ReportStatus.running,
        attempts=3,
        lease_expires_at=datetime.now(UTC) - timedelta(seconds=1),
    )
    stopped_thrice = await _insert(
        sessionmaker,
        status=ReportStatus.pending,
        attempts=3,
        error="attempt 3 was interrupted: its runner stopped",
    )
    # Queued in the normal way: must run once, not twice.
    queued = await _create(sessionmaker, queue)
    done = await _insert(sessionmaker, status=ReportStatus.complete, attempts=1, row_count=0)

    await run_burst(settings)

    for report_id, attempts in ((died, 2), (never_queued, 1), (queued, 1)):
        report = await load_report(sessionmaker, report_id)
        assert (report.status, report.attempts) == (ReportStatus.complete, attempts)
        assert await stored_csv(sessionmaker, report_id) == _expected(frames)
    killed = await load_report(sessionmaker, killed_thrice)
    assert (killed.status, killed.error) == (
        ReportStatus.failed,
        "gave up after 3 attempts: the runner of the last one stopped renewing its lease "
        "(killed, e.g. out of memory, or cut off)",
    )
    stopped = await load_report(sessionmaker, stopped_thrice)
    assert (stopped.status, stopped.error) == (
        ReportStatus.failed,
        "gave up after 3 attempts (last: attempt 3 was interrupted: its runner stopped)",
    )
    untouched = await load_report(sessionmaker, done)
    assert (untouched.status, untouched.attempts, untouched.row_count) == (
        ReportStatus.complete,
        1,
        0,
    )


async def test_a_job_arq_times_out_is_attempted_again(
    sessionmaker: Sessions,
    settings: Settings,
    queue: ArqQueue,
    frames: Frames,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Arq's own timeout (normally a backstop well after the report's) cancels the job while
    # the report is unfinished: the report goes back to pending, for the next attempt.
    _slow_compute(monkeypatch, 1.0)
    report_id = (await create_report(sessionmaker, queue, as_of=None)).report.id
    await run_burst(settings, job_timeout=0.3)
    assert (await load_report(sessionmaker, report_id)).status is ReportStatus.pending

    monkeypatch.undo()
    await run_burst(settings)

    report = await load_report(sessionmaker, report_id)
    assert (report.status, report.attempts) == (ReportStatus.complete, 2)
    assert await stored_csv(sessionmaker, report_id) == _expected(frames)


async def test_sweep_leaves_reports_whose_jobs_are_alive(sessionmaker: Sessions) -> None:
    waiting = await _insert(sessionmaker)
    leased = await _insert(
        sessionmaker,
        status=ReportStatus.running,
        attempts=1,
        lease_owner="alive:1:abc",
        lease_expires_at=datetime.now(UTC) + timedelta(minutes=1),
    )
    states = {(waiting, 1): JobState.waiting}
    queue = RecordingQueue(lambda kind, key, attempt: states[_uuid(key), attempt])

    swept = await sweep(sessionmaker, REPORTS, queue, max_attempts=3)
    assert (swept, queue.queued) == (Sweep(), [])
    assert (await load_report(sessionmaker, leased)).status is ReportStatus.running


async def test_sweep_skips_an_attempt_whose_runner_died_as_it_started(
    sessionmaker: Sessions, frames: Frames
) -> None:
    # Attempt 1's job was taken by a worker that died before claiming the report: the queue
    # keeps that job in progress for its whole timeout, but it is stale.
    dead_at_start = await _insert(sessionmaker)
    # Every attempt's runner died so: out of attempts.
    dead_thrice = await _insert(sessionmaker)
    states = {
        (dead_at_start, 1): JobState.stale,
        (dead_at_start, 2): JobState.missing,
        **{(dead_thrice, attempt): JobState.stale for attempt in (1, 2, 3)},
    }
    queue = RecordingQueue(lambda kind, key, attempt: states[_uuid(key), attempt])

    swept = await sweep(sessionmaker, REPORTS, queue, max_attempts=3)
    assert (swept.requeued, swept.failed, queue.queued) == (
        [(dead_at_start,)],
        [(dead_thrice,)],
        [(RUN_REPORT, (dead_at_start,), 2)],
    )
    failed = await load_report(sessionmaker, dead_thrice)
    assert (failed.status, failed.error) == (
        ReportStatus.failed,
        "gave up after 3 attempts: the runners of the last ones died as they started",
    )
    # Attempt 2 claims the report, though attempt 1 never did; attempt 1, late, does nothing.
    runner = Runner(owner="tests", lease_seconds=30, timeout_seconds=30, max_attempts=3)
    assert await report_runs.run_report(sessionmaker, dead_at_start, 2, runner) is (
        ReportStatus.complete
    )
    assert await report_runs.run_report(sessionmaker, dead_at_start, 1, runner) is None
    done = await load_report(sessionmaker, dead_at_start)
    assert (done.status, done.attempts) == (ReportStatus.complete, 2)
    assert await stored_csv(sessionmaker, dead_at_start) == _expected(frames)


async def test_a_started_job_goes_stale_after_the_claim_time(
    settings: Settings, queue: ArqQueue
) -> None:
    arq = ArqQueue(
        queue._redis, queue_name=settings.queue_name, job_timeout_seconds=600, claim_seconds=15
    )
    report_id = uuid4()
    await arq.enqueue(RUN_REPORT, (report_id,), 1)
    key = in_progress_key_prefix + job_id(RUN_REPORT, (report_id,), 1)
    # What a worker sets as it starts the job: Arq's in-progress timeout (600 + 60 + 10 s).
    lasts_ms = 670_000
    await queue._redis.psetex(key, lasts_ms - 1_000, b"1")  # started a second ago
    assert await arq.state(RUN_REPORT, (report_id,), 1) is JobState.running
    await queue._redis.psetex(key, lasts_ms - 20_000, b"1")  # 20 s ago, never claimed
    assert await arq.state(RUN_REPORT, (report_id,), 1) is JobState.stale
    no_staleness = ArqQueue(queue._redis, queue_name=settings.queue_name, job_timeout_seconds=600)
    assert await no_staleness.state(RUN_REPORT, (report_id,), 1) is JobState.running
    await queue._redis.delete(key)


def test_worker_settings(settings: Settings) -> None:
    kwargs = worker_settings(settings)
    assert [f.name for f in kwargs["functions"]] == [
        RUN_REPORT,
        RUN_SHARD,
        EVALUATE_LIVE,
        RUN_DELIVERY,
    ]
    assert kwargs["queue_name"] == settings.queue_name
    # One try per job, no result kept: the sweep queues each attempt (see worker_settings).
    for function in kwargs["functions"]:
        assert (function.max_tries, function.keep_result_s) == (1, 0)
    assert kwargs["job_timeout"] > settings.job_timeout_seconds
    with pytest.raises(ValueError, match="REDIS_URL"):
        worker_settings(Settings(redis_url=None))


def test_arq_command_line_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # `arq store_monitor.worker.WorkerSettings` reads the environment when it looks them up.
    monkeypatch.setenv("STORE_MONITOR_DATABASE_URL", "postgresql+asyncpg://postgres@db/sm")
    monkeypatch.setenv("STORE_MONITOR_REDIS_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("STORE_MONITOR_QUEUE_NAME", "from-the-environment")
    get_settings.cache_clear()
    try:
        looked_up = store_monitor.worker.WorkerSettings
    finally:
        get_settings.cache_clear()
    assert looked_up["queue_name"] == "from-the-environment"
    assert looked_up["redis_settings"].database == 3


def test_the_worker_needs_a_queue_and_a_shared_database() -> None:
    redis, postgres = "redis://127.0.0.1:6379/3", "postgresql+asyncpg://postgres@db/sm"
    with pytest.raises(ValueError, match="set STORE_MONITOR_REDIS_URL"):
        worker_settings(Settings(database_url=postgres, redis_url=None))
    # The embedded server belongs to the process that started it: no worker can share it.
    with pytest.raises(ValueError, match="set STORE_MONITOR_DATABASE_URL"):
        worker_settings(Settings(database_url=None, redis_url=redis))


async def test_settings_build_the_runner_upkeep_and_queue(
    settings: Settings, sessionmaker: Sessions
) -> None:
    # The settings' default shard size is the runner's own (settings may not import it).
    assert Settings.model_fields["shard_stores"].default == DEFAULT_SHARD_STORES
    tuned = settings.model_copy(update={"shard_stores": 7, "job_max_tries": 5})
    work = await build_work(tuned, sessionmaker)
    try:
        assert (work.runner.shard_stores, work.runner.max_attempts) == (7, 5)
        assert work.upkeep.max_attempts == 5
        assert isinstance(work.queue, ArqQueue)
    finally:
        await work.queue.close()
    embedded = await build_work(tuned.model_copy(update={"redis_url": None}), sessionmaker)
    assert isinstance(embedded.queue, InProcessQueue)
    await embedded.queue.close()
