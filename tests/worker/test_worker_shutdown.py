"""Stopping an Arq worker: what its start-up holds is given back before its engine goes, and
neither a round of its poll loop nor a queueing is cut midway.

A connection still checked out when the engine is disposed, or a Redis pipeline cancelled as
it unwatches its keys, is never given back: the garbage collector finds it later, in whichever
test runs then, as an unclosed-connection warning."""

import asyncio
import contextlib
from typing import Any
from uuid import uuid4

import pytest
import sqlalchemy as sa
from arq.worker import Worker
from sqlalchemy.ext.asyncio import AsyncEngine

from store_monitor import jobs
from store_monitor.settings import Settings
from store_monitor.work.arq import ArqQueue, OutlastingWorker
from store_monitor.work.queue import JobState
from store_monitor.worker import worker_settings
from support.service import REDIS_URL, stop_when

from .conftest import Sessions


async def test_a_worker_stopped_during_its_start_up_round_gives_its_connection_back_first(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = asyncio.Event()

    async def endless_round(sessionmaker: Sessions, *args: Any) -> None:
        async with sessionmaker() as session:
            await session.execute(sa.text("SELECT 1"))
            started.set()
            try:
                await asyncio.Event().wait()
            finally:
                # As an attempt gives its work back: a last write, shielded, as it is cancelled
                # (a second long, so that closing the engine meanwhile would be caught).
                await asyncio.shield(session.execute(sa.text("SELECT pg_sleep(1)")))

    checked_out_at_dispose = []
    dispose = AsyncEngine.dispose

    async def recording_dispose(engine: AsyncEngine, close: bool = True) -> None:
        checked_out_at_dispose.append(engine.pool.checkedout())  # type: ignore[attr-defined]
        await dispose(engine, close)

    monkeypatch.setattr(jobs, "upkeep_round", endless_round)
    monkeypatch.setattr(AsyncEngine, "dispose", recording_dispose)
    worker = OutlastingWorker(**worker_settings(settings), handle_signals=False, poll_delay=0.02)
    await stop_when(worker, started.wait())

    assert checked_out_at_dispose == [0]


async def test_a_stop_lets_the_round_under_way_end_and_starts_no_more_jobs(
    settings: Settings, queue: ArqQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_round = asyncio.Event()
    rounds: list[str] = []
    start_jobs = Worker.start_jobs

    async def slow_start_jobs(worker: Worker, job_ids: list[bytes]) -> None:
        if job_ids and not in_round.is_set():
            in_round.set()
            await asyncio.sleep(0.3)  # as a round's pipeline waits on Redis
            rounds.append("ended")
        await start_jobs(worker, job_ids)

    monkeypatch.setattr(Worker, "start_jobs", slow_start_jobs)
    # A key of its own: Arq's job keys are shared by every queue on the Redis.
    key = (str(uuid4()),)
    await queue.enqueue("never-run", key, 1)
    worker = OutlastingWorker(**worker_settings(settings), handle_signals=False, poll_delay=0.02)
    await stop_when(worker, in_round.wait())

    assert rounds == ["ended"]
    assert worker.jobs_complete + worker.jobs_failed + worker.jobs_retried == 0
    assert await queue.state("never-run", key, 1) is JobState.waiting


async def test_a_cancelled_queueing_ends_and_closing_the_queue_waits_for_it(
    settings: Settings, queue: ArqQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    enqueue_job = queue._redis.enqueue_job
    started = asyncio.Event()

    async def slow_enqueue_job(*args: Any, **kwargs: Any) -> Any:
        started.set()
        await asyncio.sleep(0.3)  # as its pipeline waits on Redis
        return await enqueue_job(*args, **kwargs)

    monkeypatch.setattr(queue._redis, "enqueue_job", slow_enqueue_job)
    key = (str(uuid4()),)
    caller = asyncio.create_task(queue.enqueue("later", key, 1))
    await started.wait()
    caller.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await caller
    monkeypatch.undo()
    await queue.close()

    reopened = await ArqQueue.connect(
        REDIS_URL, queue_name=settings.queue_name, job_timeout_seconds=10.0
    )
    try:
        assert await reopened.state("later", key, 1) is JobState.waiting
    finally:
        await reopened.close()


async def test_a_worker_shuts_down_after_a_job_cancelled_as_it_started(
    settings: Settings, queue: ArqQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Such a job ends cancelled, as one does that the stop reaches before it has read its job
    # data: Arq catches the cancellation only after.
    starting = asyncio.Event()
    run_job = Worker.run_job

    async def slow_run_job(worker: Worker, job_id: str, score: int) -> None:
        starting.set()
        await asyncio.sleep(60)
        await run_job(worker, job_id, score)

    monkeypatch.setattr(Worker, "run_job", slow_run_job)
    key = (str(uuid4()),)
    await queue.enqueue("never-run", key, 1)
    options = worker_settings(settings)
    shut_down = []

    async def recording_shutdown(ctx: dict[str, Any]) -> None:
        await options["on_shutdown"](ctx)
        shut_down.append(ctx)

    worker = OutlastingWorker(
        **{**options, "on_shutdown": recording_shutdown}, handle_signals=False, poll_delay=0.02
    )
    await stop_when(worker, starting.wait())

    assert len(shut_down) == 1
    assert worker.tasks == {}
