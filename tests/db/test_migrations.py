"""Alembic builds the schema the models describe, and tears it down again."""

import argparse
import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from store_monitor.db.migrations import alembic_config, is_at_head, script_location, upgrade_to_head
from store_monitor.db.models import Base, Poll, Report, ReportFile, ReportStatus, Store
from store_monitor.db.partitions import is_poll_partition, make_poll_weeks_ahead
from store_monitor.db.session import create_engine
from store_monitor.settings import get_settings

from .frames import at

ROOT = Path(__file__).resolve().parents[2]
# The revision before polls were partitioned.
BEFORE = "97b987e2c479"
TABLES = {
    "stores",
    "polls",
    "business_hours",
    "timezones",
    "store_hours_version",
    "reports",
    "report_rows",
    "api_keys",
    "store_owners",
    "report_incidents",
    "report_days",
    "report_files",
    "report_shards",
    "webhook_subscriptions",
    "webhook_deliveries",
    "webhook_attempts",
    "events",
    "dashboard_sessions",
    "report_schedules",
    "live_stores",
    "live_changes",
    "live_evaluations",
}


async def tables_and_types(engine: AsyncEngine) -> tuple[set[str], set[str]]:
    def inspect(connection: Connection) -> tuple[set[str], set[str]]:
        inspector = sa.inspect(connection)
        enums = {enum["name"] for enum in inspector.get_enums()}  # type: ignore[attr-defined]
        tables = {name for name in inspector.get_table_names() if not is_poll_partition(name)}
        return tables - {"alembic_version"}, enums

    async with engine.connect() as connection:
        return await connection.run_sync(inspect)


async def test_the_migrated_schema_is_the_models(db_engine: AsyncEngine) -> None:
    def differences(connection: Connection) -> list[object]:
        # As env.py does: the weekly partitions of polls are not in the models.
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "include_name": lambda name, type_, _: (
                    not (type_ == "table" and is_poll_partition(name))
                ),
            },
        )
        return list(compare_metadata(context, Base.metadata))

    async with db_engine.connect() as connection:
        assert await connection.run_sync(differences) == []
        assert await is_at_head(connection)


async def test_upgrade_and_downgrade_round_trip(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url, process_name="test")
    try:
        async with engine.connect() as connection:
            assert not await is_at_head(connection)

        await upgrade_to_head(empty_database_url)
        await upgrade_to_head(empty_database_url)  # nothing left to do: no error
        async with engine.connect() as connection:
            assert await is_at_head(connection)
        tables, enums = await tables_and_types(engine)
        assert tables == TABLES
        assert enums == {"poll_status", "report_status", "key_scope"}

        async with engine.begin() as connection:
            await connection.run_sync(
                lambda sync: command.downgrade(_with_connection(sync), "base")
            )
        assert await tables_and_types(engine) == (set(), set())
        async with engine.connect() as connection:
            assert not await is_at_head(connection)

        await upgrade_to_head(empty_database_url)
        assert (await tables_and_types(engine))[0] == TABLES
    finally:
        await engine.dispose()


async def test_stores_learn_their_latest_poll_from_the_stored_polls(
    empty_database_url: str,
) -> None:
    engine = create_engine(empty_database_url, process_name="test")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(
                lambda sync: command.upgrade(_with_connection(sync), "5d4860f7a9c8")
            )
            await connection.execute(sa.insert(Store), [{"store_id": "a"}, {"store_id": "b"}])
            await connection.execute(
                sa.insert(Poll),
                [
                    {
                        "store_id": "a",
                        "timestamp_utc": at("2023-01-24 10:00:00"),
                        "status": "active",
                    },
                    {
                        "store_id": "a",
                        "timestamp_utc": at("2023-01-25 09:30:00.25"),
                        "status": "inactive",
                    },
                    {
                        "store_id": "a",
                        "timestamp_utc": at("2023-01-02 00:00:00"),
                        "status": "active",
                    },
                ],
            )

        await upgrade_to_head(empty_database_url)

        async with engine.connect() as connection:
            latest = await connection.execute(
                sa.select(Store.store_id, Store.latest_poll_at).order_by(Store.store_id)
            )
            assert latest.all() == [("a", at("2023-01-25 09:30:00.25")), ("b", None)]
    finally:
        await engine.dispose()


async def test_work_from_before_leases_and_files_is_made_pending(
    empty_database_url: str,
) -> None:
    engine = create_engine(empty_database_url, process_name="test")
    unleased, leased, without_file, with_file = (uuid4() for _ in range(4))
    in_a_minute = datetime.now(UTC) + timedelta(minutes=1)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(
                lambda sync: command.upgrade(_with_connection(sync), "5e2a9c41d7b3")
            )
            # Every row with every column: an insert of many rows takes the first row's columns.
            await connection.execute(
                sa.insert(Report).values(
                    attempts=1, lease_expires_at=sa.bindparam("expires"), row_count=0
                ),
                [
                    {"id": unleased, "status": ReportStatus.running, "expires": None},
                    {"id": leased, "status": ReportStatus.running, "expires": in_a_minute},
                    {"id": without_file, "status": ReportStatus.complete, "expires": None},
                    {"id": with_file, "status": ReportStatus.complete, "expires": None},
                ],
            )
            await connection.execute(
                sa.insert(ReportFile),
                [
                    {
                        "report_id": with_file,
                        "kind": "report",
                        "sha256": "",
                        "size": 0,
                        "rows": 0,
                        "gzip": b"",
                    }
                ],
            )

        await upgrade_to_head(empty_database_url)

        async with engine.connect() as connection:
            states = await connection.execute(sa.select(Report.id, Report.status, Report.attempts))
            assert {row.id: (row.status, row.attempts) for row in states} == {
                unleased: (ReportStatus.pending, 0),
                leased: (ReportStatus.running, 1),
                without_file: (ReportStatus.pending, 0),
                with_file: (ReportStatus.complete, 1),
            }
    finally:
        await engine.dispose()


async def test_partitioning_moves_the_stored_polls_and_back(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url, process_name="test")
    stored = [
        ("a", at("2023-01-15 23:59:59.999999"), "active"),  # a Sunday: the week of 01-09
        ("a", at("2023-01-16 00:00:00"), "inactive"),  # the next Monday: the week of 01-16
        ("a", at("2023-01-25 09:30:00.25"), "inactive"),
        ("b", at("2022-12-01 10:00:00"), "active"),
    ]
    polls = sa.select(Poll.store_id, Poll.timestamp_utc, Poll.status).order_by(
        Poll.store_id, Poll.timestamp_utc
    )
    try:
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: command.upgrade(_with_connection(sync), BEFORE))
            await connection.execute(
                sa.insert(Store),
                [
                    {"store_id": "a", "latest_poll_at": at("2023-01-25 09:30:00.25")},
                    {"store_id": "b", "latest_poll_at": at("2022-12-01 10:00:00")},
                ],
            )
            await connection.execute(
                sa.text("INSERT INTO polls VALUES (:store_id, :at, CAST(:status AS poll_status))"),
                [{"store_id": s, "at": when, "status": status} for s, when, status in stored],
            )

        await upgrade_to_head(empty_database_url)

        async with engine.connect() as connection:
            assert [tuple(row) for row in await connection.execute(polls)] == [
                (store, when, status) for store, when, status in stored
            ]
            placed = await connection.execute(
                sa.text(
                    "SELECT tableoid::regclass::text FROM polls ORDER BY store_id, timestamp_utc"
                )
            )
            assert placed.scalars().all() == [
                "polls_20230109",
                "polls_20230116",
                "polls_20230123",
                "polls_20221128",
            ]
            firsts = await connection.execute(
                sa.select(Store.store_id, Store.first_poll_at).order_by(Store.store_id)
            )
            assert firsts.all() == [("a", at("2023-01-15 23:59:59.999999")), ("b", stored[3][1])]
            assert await _polls_kind(connection) == "p"
        # Weeks made ahead, as the workers' maintenance does: tables that are not partitions.
        async with AsyncSession(engine) as session, session.begin():
            await make_poll_weeks_ahead(
                session, start=at("2023-01-30 00:00:00"), through=at("2023-02-13 00:00:00")
            )

        async with engine.begin() as connection:
            await connection.run_sync(
                lambda sync: command.downgrade(_with_connection(sync), BEFORE)
            )
        async with engine.connect() as connection:
            assert [tuple(row) for row in await connection.execute(polls)] == [
                (store, when, status) for store, when, status in stored
            ]
            assert await _polls_kind(connection) == "r"
            indexes = await connection.run_sync(
                lambda sync: {index["name"] for index in sa.inspect(sync).get_indexes("polls")}
            )
            assert indexes == {"ix_polls_timestamp_utc"}
            partitions = await connection.scalar(
                sa.text(r"SELECT count(*) FROM pg_class WHERE relname LIKE 'polls\_%'")
            )
            assert partitions == 0
    finally:
        await engine.dispose()


async def _polls_kind(connection: AsyncConnection) -> str | None:
    """pg_class.relkind of polls: "p" partitioned, "r" a plain table."""
    kind = await connection.scalar(
        sa.text("SELECT relkind::text FROM pg_class WHERE relname = 'polls'")
    )
    return None if kind is None else str(kind)


def _with_connection(connection: Connection) -> Config:
    config = alembic_config()
    config.attributes["connection"] = connection
    return config


def test_revision_files_are_dated() -> None:
    versions = sorted((script_location() / "versions").glob("*.py"))
    assert versions
    for path in versions:
        assert re.fullmatch(r"\d{4}_\d{2}_\d{2}_\d{4}-[0-9a-f]+_\w+\.py", path.name), path.name


def test_the_scripts_are_the_projects_root_alembic_directory() -> None:
    assert script_location() == ROOT / "alembic"


@pytest.fixture
def cli_config(tmp_path: Path) -> Iterator[Config]:
    """Alembic as its command line runs it: from alembic.ini, leaving pytest's logging alone."""
    config = Config(ROOT / "alembic.ini")
    config.attributes["configure_logger"] = False
    yield config
    get_settings.cache_clear()


def test_the_command_line_takes_the_url_from_x(cli_config: Config, empty_database_url: str) -> None:
    cli_config.cmd_opts = argparse.Namespace(x=[f"url={empty_database_url}"])
    command.upgrade(cli_config, "head")
    assert _tables(empty_database_url) >= TABLES


def test_the_command_line_falls_back_to_the_settings(
    cli_config: Config, empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORE_MONITOR_DATABASE_URL", empty_database_url)
    get_settings.cache_clear()
    command.upgrade(cli_config, "head")
    assert _tables(empty_database_url) >= TABLES


def _tables(url: str) -> set[str]:
    # A sync test: Alembic's env.py ran its own event loop, and so does this.
    return asyncio.run(tables_and_types_at(url))[0]


async def tables_and_types_at(url: str) -> tuple[set[str], set[str]]:
    engine = create_engine(url, process_name="store-monitor-tests")
    try:
        tables, enums = await tables_and_types(engine)
        return tables | {"alembic_version"}, enums
    finally:
        await engine.dispose()
