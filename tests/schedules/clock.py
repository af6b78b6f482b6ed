"""A database clock that tests set: `now()` of a `test_clock` schema searched before
pg_catalog's, so the code under test reads the database's clock as it does in production."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from store_monitor.db.session import create_sessionmaker

_SETUP = (
    "CREATE SCHEMA IF NOT EXISTS test_clock",
    "CREATE TABLE IF NOT EXISTS test_clock.instant (at timestamptz NOT NULL)",
    # Unset, the clock is the real one.
    "CREATE OR REPLACE FUNCTION test_clock.now() RETURNS timestamptz LANGUAGE sql STABLE AS "
    "$$ SELECT coalesce((SELECT max(at) FROM test_clock.instant), pg_catalog.now()) $$",
)


async def install_clock(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            # Tests in parallel processes may race to create it: one at a time.
            await connection.execute(sa.text("SELECT pg_advisory_xact_lock(7718)"))
            for statement in _SETUP:
                await connection.execute(sa.text(statement))
            await connection.execute(sa.text("DELETE FROM test_clock.instant"))
    finally:
        await engine.dispose()


def clocked_engine(url: str) -> AsyncEngine:
    """An engine whose sessions' `now()` is the test clock's."""
    return create_async_engine(
        url,
        connect_args={"server_settings": {"search_path": "test_clock, pg_catalog, public"}},
    )


@asynccontextmanager
async def clocked_sessions(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = clocked_engine(url)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def set_clock(sessions: async_sessionmaker[AsyncSession], at: datetime) -> None:
    async with sessions.begin() as session:
        await session.execute(sa.text("DELETE FROM test_clock.instant"))
        await session.execute(
            sa.text("INSERT INTO test_clock.instant (at) VALUES (:at)"), {"at": at}
        )
