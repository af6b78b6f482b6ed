"""The engine factory: outages of the database are told from errors of a statement or its
data; pooled connections are pinged before use only after being idle."""

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store_monitor.db.session import create_engine, database_unavailable


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


@asynccontextmanager
async def _one_connection(url: str, *, ping_idle_seconds: float) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(
        url,
        process_name="store-monitor-tests",
        pool_size=1,
        max_overflow=0,
        ping_idle_seconds=ping_idle_seconds,
    )
    try:
        yield engine
    finally:
        await engine.dispose()


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        pid: int = (await connection.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
        return pid


async def _terminate(url: str, pid: int) -> None:
    """What a restart of Postgres, or an idle timeout, does to a pooled connection."""
    async with (
        _one_connection(url, ping_idle_seconds=0.0) as other,
        other.connect() as connection,
    ):
        # Waits until the server process has ended (up to 10 s).
        await connection.execute(sa.text(f"SELECT pg_terminate_backend({pid}, 10000)"))


@pytest.mark.parametrize(("ping_idle_seconds", "pinged"), [(0.0, True), (3600.0, False)])
async def test_a_pooled_connection_is_pinged_only_once_idle_long_enough(
    postgres_url: str, ping_idle_seconds: float, pinged: bool
) -> None:
    async with _one_connection(postgres_url, ping_idle_seconds=ping_idle_seconds) as engine:
        sent: list[str] = []

        def note(record: Any) -> None:
            sent.append(record.query)

        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            raw.driver_connection.add_query_logger(note)  # type: ignore[union-attr]
        sent.clear()  # the first connection's own rollback on return
        await _backend_pid(engine)
    # The ping is SQLAlchemy's: an empty statement (";") in a transaction of its own.
    assert (";" in sent) is pinged, sent


async def test_a_connection_that_died_while_idle_is_replaced_before_use(
    postgres_url: str,
) -> None:
    async with _one_connection(postgres_url, ping_idle_seconds=0.0) as engine:
        first = await _backend_pid(engine)
        await _terminate(postgres_url, first)
        assert await _backend_pid(engine) != first


async def test_a_connection_in_steady_use_that_dies_fails_once_then_the_pool_is_renewed(
    postgres_url: str,
) -> None:
    async with _one_connection(postgres_url, ping_idle_seconds=3600.0) as engine:
        first = await _backend_pid(engine)
        await _terminate(postgres_url, first)
        with pytest.raises(exc.DBAPIError) as failed:
            await _backend_pid(engine)
        assert database_unavailable(failed.value)
        assert await _backend_pid(engine) != first
