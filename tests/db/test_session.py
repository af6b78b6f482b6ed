"""The engine factory: outages of the database are told from errors of a statement or its
data."""

import socket
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncConnection

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
