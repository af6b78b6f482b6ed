"""Stopping an Arq worker: what its start-up holds is given back before its engine goes.

A connection still checked out when the engine is disposed is never closed by it: the garbage
collector finds it later, in whichever test runs then, as an unclosed-connection warning."""

import asyncio
import contextlib
from typing import Any

import pytest
import sqlalchemy as sa
from arq.worker import Worker
from sqlalchemy.ext.asyncio import AsyncEngine

from store_monitor import jobs
from store_monitor.settings import Settings
from store_monitor.worker import worker_settings
from support.service import close_worker

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
    worker = Worker(**worker_settings(settings), handle_signals=False, poll_delay=0.02)
    running = asyncio.create_task(worker.async_run())
    await started.wait()

    await close_worker(worker)
    with contextlib.suppress(asyncio.CancelledError):
        await running

    assert checked_out_at_dispose == [0]
