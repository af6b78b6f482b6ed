"""The engine factory: SQLite connections discarded mid-query keep no lock; outages of either
database are told from errors of a statement or its data."""

import asyncio
import socket
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncConnection

from store_monitor.db.session import create_engine, database_unavailable


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


async def _error_of(url: str, work: Callable[[AsyncConnection], Awaitable[object]]) -> Exception:
    engine = create_engine(url, process_name="store-monitor-tests")
    try:
        async with engine.connect() as connection:
            await work(connection)
    except Exception as error:
        return error
    finally:
        await engine.dispose()
    raise AssertionError("no error")


def _statement(sql: str) -> Callable[[AsyncConnection], Awaitable[object]]:
    return lambda connection: connection.execute(sa.text(sql))


async def test_postgres_outages_are_told_from_statement_errors(postgres_url: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    url = sa.make_url(postgres_url)
    refused = url.set(host="127.0.0.1", port=closed_port).render_as_string(hide_password=False)
    missing = url.set(database="store_monitor_no_such_db").render_as_string(hide_password=False)

    async def killed(connection: AsyncConnection) -> None:
        pid = (await connection.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
        await _error_of(postgres_url, _statement(f"SELECT pg_terminate_backend({pid})"))
        await connection.execute(sa.text("SELECT 1"))

    outages = [
        await _error_of(refused, _statement("SELECT 1")),
        await _error_of(missing, _statement("SELECT 1")),
        await _error_of(postgres_url, killed),
        exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached"),
    ]
    assert isinstance(outages[0], exc.OperationalError)  # not the socket's own error
    assert [database_unavailable(error) for error in outages] == [True] * len(outages)

    not_outages = [
        await _error_of(postgres_url, _statement("SELEC 1")),
        await _error_of(postgres_url, _statement("SELECT 1 / 0")),
        await _error_of(postgres_url, _statement("SELECT * FROM no_such_table")),
        ValueError("not a database error"),
    ]
    assert [database_unavailable(error) for error in not_outages] == [False] * len(not_outages)


async def test_sqlite_outages_are_told_from_statement_errors(tmp_path: Path) -> None:
    path = tmp_path / "outages.db"
    url = f"sqlite+aiosqlite:///{path}"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)")
    setup.close()

    async def busy(connection: AsyncConnection) -> None:
        await connection.execute(sa.text("PRAGMA busy_timeout = 0"))
        await connection.execute(sa.text("INSERT INTO t VALUES (1)"))

    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        locked = await _error_of(url, busy)
    finally:
        writer.close()
    assert "locked" in str(locked)
    assert database_unavailable(locked)

    async def duplicate(connection: AsyncConnection) -> None:
        await connection.execute(sa.text("INSERT INTO t VALUES (2), (2)"))

    not_outages = [
        await _error_of(url, _statement("SELEC 1")),
        await _error_of(url, _statement("SELECT * FROM no_such_table")),
        await _error_of(url, duplicate),
    ]
    # sqlite3 calls the first two OperationalError, as it does a locked database.
    assert isinstance(not_outages[0], exc.OperationalError)
    assert [database_unavailable(error) for error in not_outages] == [False] * len(not_outages)
