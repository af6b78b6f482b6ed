"""Database fixtures for every test: a Postgres database made for this test run, built by
Alembic, and a session whose work is rolled back afterwards."""

import os
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from store_monitor.db.migrations import upgrade_to_head
from store_monitor.db.session import create_engine
from support.database import empty_tables

POSTGRES_ADMIN_URL = os.environ.get(
    "STORE_MONITOR_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
"""A database of the test server to connect to while creating and dropping the test databases."""


async def create_postgres_database() -> str:
    """A new, empty database with a unique name on the test server; its URL."""
    name = f"store_monitor_test_{uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    return sa.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(url: str) -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}" WITH (FORCE)')


async def _admin(statement: str) -> None:
    admin = create_async_engine(
        POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        async with admin.connect() as connection:
            await connection.execute(sa.text(statement))
    except OSError as error:
        raise RuntimeError(
            f"no Postgres for the tests at {POSTGRES_ADMIN_URL}: "
            "start one, or point STORE_MONITOR_TEST_POSTGRES_URL at one"
        ) from error
    finally:
        await admin.dispose()


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    """A Postgres database for this test run, at the latest schema; dropped at the end."""
    url = await create_postgres_database()
    try:
        await upgrade_to_head(url)
        yield url
    finally:
        await drop_postgres_database(url)


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """The test run's database, for tests that empty it (see `db_session`)."""
    return postgres_url


@pytest.fixture
async def empty_database_url() -> AsyncIterator[str]:
    """A database with nothing in it, not even a schema, for one test."""
    url = await create_postgres_database()
    try:
        yield url
    finally:
        await drop_postgres_database(url)


@pytest.fixture
async def db_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, process_name="store-monitor-tests")
    yield engine
    await engine.dispose()


@pytest.fixture
async def db_session(db_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction that is rolled back after the test, on tables emptied
    at its start. The session's own commit and rollback act on a savepoint."""
    async with db_engine.connect() as connection:
        transaction = await connection.begin()
        # Other tests commit into the same databases: start from empty tables all the same.
        await empty_tables(connection)
        session = AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()
