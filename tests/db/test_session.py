"""The engine factory's SQLite connections: one discarded mid-query keeps no lock."""

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from store_monitor.db.session import create_engine


async def test_a_query_cancelled_mid_transaction_leaves_the_database_unlocked(
    tmp_path: Path,
) -> None:
    # A cancelled await cannot stop the query running in aiosqlite's thread: SQLAlchemy
    # discards the connection, whose cursor the cancellation's traceback keeps alive.
    path = tmp_path / "locks.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}", process_name="store-monitor-tests")
    entered, release = threading.Event(), threading.Event()

    def hold() -> int:
        entered.set()
        release.wait(10)
        return 1

    @event.listens_for(engine.sync_engine, "connect")
    def add_hold(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.create_function("hold", 0, hold)

    async def write_then_hold() -> None:
        async with engine.begin() as connection:
            await connection.execute(sa.text("UPDATE t SET x = 2"))
            await connection.execute(sa.text("SELECT hold()"))

    try:
        async with engine.begin() as connection:
            await connection.execute(sa.text("CREATE TABLE t (x INTEGER)"))
            await connection.execute(sa.text("INSERT INTO t VALUES (1)"))
        task = asyncio.create_task(write_then_hold())
        assert await asyncio.to_thread(entered.wait, 10)
        task.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        # `task` still holds the CancelledError, its traceback, and so the query's cursor.
        assert await asyncio.to_thread(_can_write, path)
        assert await asyncio.to_thread(_value, path) == 1  # the update was rolled back
    finally:
        release.set()
        await engine.dispose()


def _can_write(path: Path) -> bool:
    connection = sqlite3.connect(path, timeout=1.0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as error:
        if "locked" not in str(error):
            raise
        return False
    finally:
        connection.close()


def _value(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        (value,) = connection.execute("SELECT x FROM t").fetchone()
        return int(value)
    finally:
        connection.close()
