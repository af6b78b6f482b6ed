"""Fixtures of the delivery tests: the test run's database, emptied, and its sessions."""

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor.db.session import create_engine, create_sessionmaker
from support.service import empty_postgres


@pytest.fixture
async def sessions(postgres_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await empty_postgres(postgres_url)
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    yield create_sessionmaker(engine)
    await engine.dispose()
