"""The one engine and session factory, shared by the API, the worker, the CLI and the tests."""

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, Final

from sqlalchemy import event, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

PING_IDLE_SECONDS: Final = 1.0
"""A pooled connection idle at least this long is pinged before it is handed out."""


def create_engine(
    url: str,
    *,
    process_name: str,
    pool_size: int = 5,
    max_overflow: int = 10,
    pool_timeout: float = 30.0,
    ping_idle_seconds: float = PING_IDLE_SECONDS,
) -> AsyncEngine:
    """An engine for a `postgresql+asyncpg://` URL.

    `process_name` shows as the Postgres `application_name` (e.g. in `pg_stat_activity`);
    Postgres' JIT compilation is off for the engine's connections. The pool settings are
    SQLAlchemy's: connections kept, opened beyond those, seconds to wait for one. A connection
    idle for `ping_idle_seconds` or more is pinged when taken from the pool (see
    `_ping_when_idle`).
    """
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        # No JIT: Postgres compiles any statement it costs above `jit_above_cost`, and for the
        # report's inputs that took a quarter of a second, more than it saved.
        connect_args={"server_settings": {"application_name": process_name, "jit": "off"}},
    )
    _connect_errors_as_operational(engine)
    _ping_when_idle(engine, ping_idle_seconds)
    return engine


def database_unavailable(error: BaseException) -> bool:
    """Whether `error` says the database cannot serve now, whatever the statement: it cannot be
    reached, the connection was lost, it is busy, shutting down or out of resources; or no
    pooled connection came free in time. Not for errors of a statement or its data."""
    if isinstance(error, exc.TimeoutError):
        return True
    if not isinstance(error, exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    driver_error = error.orig
    sqlstate = getattr(driver_error, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate.startswith(_POSTGRES_UNAVAILABLE)
    # No code: a failed connect (see `_connect_errors_as_operational`) or a driver's own error.
    return isinstance(error, exc.OperationalError)


def transient_error(error: BaseException) -> bool:
    """Whether running the same work again may well succeed: the database was unavailable (see
    `database_unavailable`), or Postgres gave up on the transaction to let another go on
    (serialization failure 40001, deadlock 40P01)."""
    if database_unavailable(error):
        return True
    driver_error = getattr(error, "orig", None)
    return getattr(driver_error, "sqlstate", None) in _POSTGRES_RETRY_TRANSACTION


_POSTGRES_RETRY_TRANSACTION: Final = frozenset({"40001", "40P01"})
# SQLSTATE prefixes: connection exceptions, invalid authorization, no such database,
# insufficient resources (e.g. too many connections), operator intervention (shutting down).
_POSTGRES_UNAVAILABLE: Final = ("08", "28", "3D000", "53", "57P")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Loaded attributes stay readable after commit: no lazy refresh, which async forbids.
    return async_sessionmaker(engine, expire_on_commit=False)


@contextlib.asynccontextmanager
async def reading(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session for reads only, whose connection is dropped, not given back, if the block is
    cut short: a query cancelled midway (a job stopped) leaves asyncpg's connection unusable,
    and resetting it would raise in place of the original error."""
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.invalidate()
            raise


_RETURNED_AT: Final = "store_monitor_returned_at"


def _ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """SQLAlchemy's `pool_pre_ping`, for connections idle `idle_seconds` or more only (as
    HikariCP's `aliveBypassWindowMs`): its ping is three round trips (BEGIN, a statement,
    ROLLBACK), more than a status read's own work. A connection that died while idle (Postgres
    restarted, an idle timeout) is still replaced before use; one in steady use that dies
    fails its statement as `database_unavailable`, and SQLAlchemy then renews the whole pool."""

    @event.listens_for(engine.sync_engine, "checkin")
    def returned(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def ping_if_idle(
        dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        returned_at = record.info.get(_RETURNED_AT)
        # A new connection has no return time: it has just proved itself by connecting.
        if returned_at is None or time.monotonic() - returned_at < idle_seconds:
            return
        dialect = engine.dialect
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                # As the pre-ping does: the pool retries with a new connection, and renews
                # the others (the database probably restarted).
                raise exc.InvalidatePoolError(str(error)) from error
            raise


def _connect_errors_as_operational(engine: AsyncEngine) -> None:
    # asyncpg raises the socket's own errors (connection refused, unknown host, timeout), which
    # SQLAlchemy passes on unwrapped; as the DBAPI's OperationalError ("the data source cannot
    # be reached") they come out as SQLAlchemy's, like every other database error.
    @event.listens_for(engine.sync_engine, "do_connect")
    def connect(
        dialect: Dialect, connection_record: Any, cargs: Any, cparams: dict[str, Any]
    ) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except OSError as error:
            raise dialect.loaded_dbapi.OperationalError(
                f"cannot connect to the database: {error}"
            ) from error
