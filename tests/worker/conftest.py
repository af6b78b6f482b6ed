"""Fixtures of the worker tests: a Postgres database holding a small data set, settings with a
queue of their own on the real Redis, that queue; and reading a report back."""

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor import ingest
from store_monitor.db.models import LiveEvaluation, Report
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.settings import Settings
from store_monitor.sources import read_business_hours, read_polls, read_timezones
from store_monitor.synthetic import generate
from store_monitor.work.arq import ArqQueue
from support.service import empty_postgres, postgres_mode

Frames = tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(scope="session")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Frames:
    files = generate(Path(tmp_path_factory.mktemp("data")), stores=10, days=8, seed=5)
    return (
        read_polls(files.store_status),
        read_business_hours(files.menu_hours),
        read_timezones(files.timezones),
    )


@pytest.fixture
def settings(postgres_url: str) -> Settings:
    return postgres_mode(postgres_url, job_timeout_seconds=10.0, job_max_tries=3)


@pytest.fixture
async def sessionmaker(
    postgres_url: str, frames: Frames
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The test's own engine on a database holding only `frames`."""
    await empty_postgres(postgres_url)
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    maker = create_sessionmaker(engine)
    polls, hours, zones = frames
    async with maker.begin() as session:
        await ingest.ingest_polls(session, polls)
        await ingest.ingest_business_hours(session, hours)
        await ingest.ingest_timezones(session, zones)
        # These tests count report jobs: the live evaluation the ingest made pending is not one.
        await session.execute(sa.delete(LiveEvaluation))
    yield maker
    await engine.dispose()


@pytest.fixture
async def queue(settings: Settings) -> AsyncIterator[ArqQueue]:
    assert settings.redis_url is not None
    # Not `runtime.build_work`'s: without a claim time no job here is ever stale, however slow
    # the machine.
    queue = await ArqQueue.connect(
        settings.redis_url,
        queue_name=settings.queue_name,
        job_timeout_seconds=settings.job_timeout_seconds,
    )
    yield queue
    await queue.close()


async def load_report(sessions: Sessions, report_id: UUID) -> Report:
    async with sessions() as session:
        report = await session.get(Report, report_id)
    assert report is not None
    return report
