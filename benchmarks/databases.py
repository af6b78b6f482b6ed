"""The benchmarks' Postgres: a fresh database per run at the latest schema (dropped after it),
and a generated data set loaded into it the way the service loads one."""

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from uuid import uuid4

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from store_monitor import frames, ingest
from store_monitor.db.migrations import upgrade_to_head
from store_monitor.db.partitions import make_poll_weeks_ahead
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.sources import read_business_hours, read_polls, read_timezones

ADMIN_URL = os.environ.get(
    "STORE_MONITOR_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


async def autocommit(statement: str, *, url: str = ADMIN_URL) -> None:
    """Run one statement outside a transaction (CREATE DATABASE, VACUUM)."""
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with admin.connect() as connection:
            await connection.execute(sa.text(statement))
    finally:
        await admin.dispose()


@contextmanager
def database(source: Path | None = None) -> Iterator[str]:
    """A fresh database at the latest schema, dropped afterwards; `source`: that of the
    revision whose `src` folder this is (beside its `alembic` folder)."""
    name = f"store_monitor_bench_{uuid4().hex[:8]}"
    asyncio.run(autocommit(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        if source is None:
            asyncio.run(upgrade_to_head(url))
        else:
            upgrade = (
                "import asyncio, sys; from store_monitor.db.migrations import upgrade_to_head; "
                "asyncio.run(upgrade_to_head(sys.argv[1]))"
            )
            subprocess.run(
                [sys.executable, "-c", upgrade, url],
                env={**os.environ, "PYTHONPATH": str(source)},
                check=True,
            )
        yield url
    finally:
        asyncio.run(autocommit(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def ingest_data_set(
    url: str, folder: Path, *, weeks_ahead: bool = False
) -> tuple[int, float]:
    """Load one generated data set; the polls' count and the seconds their load took.

    `weeks_ahead`: the polls' weekly tables are made (empty) first, as the maintenance does for
    live polls; otherwise the load makes them (a backfill)."""
    polls = read_polls(folder / frames.POLLS_FILE)
    hours = read_business_hours(folder / frames.HOURS_FILE)
    zones = read_timezones(folder / frames.TIMEZONES_FILE)
    engine = create_engine(url, process_name="store-monitor-bench")
    try:
        sessionmaker = create_sessionmaker(engine)
        if weeks_ahead:
            async with sessionmaker.begin() as session:
                first, last = polls["timestamp_utc"].min(), polls["timestamp_utc"].max()
                assert isinstance(first, datetime)
                assert isinstance(last, datetime)
                await make_poll_weeks_ahead(session, start=first, through=last)
        started = time.perf_counter()
        async with sessionmaker.begin() as session:
            await ingest.ingest_polls(session, polls)
        seconds = time.perf_counter() - started
        async with sessionmaker.begin() as session:
            await ingest.ingest_business_hours(session, hours)
            await ingest.ingest_timezones(session, zones)
    finally:
        await engine.dispose()
    return polls.height, seconds
