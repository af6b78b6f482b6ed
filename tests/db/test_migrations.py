"""Alembic builds the schema the models describe, on both dialects, and tears it down again."""

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store_monitor.db.migrations import alembic_config, is_at_head, script_location, upgrade_to_head
from store_monitor.db.models import Base, Poll, Store
from store_monitor.db.partitions import is_poll_partition
from store_monitor.db.session import create_engine
from store_monitor.settings import get_settings

from .frames import at

ROOT = Path(__file__).resolve().parents[2]
# The revision before polls were partitioned.
BEFORE = "9c1e7d3b5a20"
TABLES = {"stores", "polls", "business_hours", "timezones", "reports", "report_rows"}


async def tables_and_types(engine: AsyncEngine) -> tuple[set[str], set[str]]:
    def inspect(connection: Connection) -> tuple[set[str], set[str]]:
        inspector = sa.inspect(connection)
        enums: set[str] = set()
        if connection.dialect.name == "postgresql":
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
        if engine.dialect.name == "postgresql":
            assert enums == {"poll_status", "report_status"}

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


async def test_partitioning_moves_the_stored_polls_and_back(empty_database_url: str) -> None:
    if empty_database_url.startswith("sqlite"):
        pytest.skip("SQLite has no partitions")
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


def test_the_command_line_takes_the_url_from_x(cli_config: Config, tmp_path: Path) -> None:
    path = tmp_path / "from-x.db"
    cli_config.cmd_opts = argparse.Namespace(x=[f"url=sqlite+aiosqlite:///{path}"])
    command.upgrade(cli_config, "head")
    assert _tables(path) >= TABLES


def test_the_command_line_falls_back_to_the_settings(
    cli_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "from-env.db"
    monkeypatch.setenv("STORE_MONITOR_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    get_settings.cache_clear()
    command.upgrade(cli_config, "head")
    assert _tables(path) >= TABLES


def _tables(path: Path) -> set[str]:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
