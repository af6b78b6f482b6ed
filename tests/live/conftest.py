"""Fixtures of the live tests: an empty Postgres database of the test run, ingests in
transactions of their own (as the API's and the CLI's), and evaluations run to the end."""

from collections.abc import AsyncIterator, Sequence
from datetime import datetime

import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor import ingest, live
from store_monitor.db import live_state
from store_monitor.db.models import Event, LiveEvaluation, ReportStatus
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.frames import POLLS
from store_monitor.webhooks.events import AnyEvent, parse_event
from store_monitor.work.lease import Runner
from support.service import empty_postgres

Sessions = async_sessionmaker[AsyncSession]

RUNNER = Runner(owner="tests:1:live", lease_seconds=5.0, timeout_seconds=30.0, max_attempts=3)


@pytest.fixture
async def sessions(postgres_url: str) -> AsyncIterator[Sessions]:
    await empty_postgres(postgres_url)
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    yield create_sessionmaker(engine)
    await engine.dispose()


def polls(*rows: tuple[str, str, datetime]) -> pl.DataFrame:
    """Polls from (store_id, status, instant) rows."""
    return pl.DataFrame(
        [{"store_id": s, "status": status, "timestamp_utc": at} for s, status, at in rows],
        schema=POLLS,
    )


async def ingest_polls(sessions: Sessions, frame: pl.DataFrame) -> None:
    """One ingest, committed: it marks its stores changed and makes an evaluation pending."""
    async with sessions.begin() as session:
        await ingest.ingest_polls(session, frame)


async def evaluate(sessions: Sessions) -> list[ReportStatus | None]:
    """Run the pending evaluations, in order, as the queue would; their outcomes."""
    outcomes: list[ReportStatus | None] = []
    while True:
        async with sessions() as session:
            due = await live_state.next_pending(session)
        if due is None:
            return outcomes
        evaluation_id, attempt = due
        outcomes.append(await live.run_evaluation(sessions, evaluation_id, attempt, RUNNER))


async def events(sessions: Sessions) -> list[AnyEvent]:
    """The outbox, in the order written."""
    async with sessions() as session:
        bodies = (await session.scalars(sa.select(Event.body).order_by(Event.seq))).all()
    return [parse_event(body) for body in bodies]


async def evaluations(sessions: Sessions) -> Sequence[LiveEvaluation]:
    async with sessions() as session:
        return (await session.scalars(sa.select(LiveEvaluation).order_by(LiveEvaluation.seq))).all()
