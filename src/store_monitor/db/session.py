"""The one engine and session factory, shared by the API, the worker, the CLI and the tests."""

import contextlib
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


def create_engine(
    url: str,
    *,
    process_name: str,
    pool_size: int = 5,
    max_overflow: int = 10,
    pool_timeout: float = 30.0,
) -> AsyncEngine:
    """An engine for a `postgresql+asyncpg://` URL.

    `process_name` shows as the Postgres `application_name` (e.g. in `pg_stat_activity`);
    Postgres' JIT compilation is off for the engine's connections. The pool settings are
    SQLAlchemy's: connections kept, opened beyond those, seconds to wait for one.
    """
    engine = create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        # No JIT: Postgres compiles any statement it costs above `jit_above_cost`, and for the
        # report's inputs that took a quarter of a second, more than it saved.
        connect_args={"server_settings": {"application_name": process_name, "jit": "off"}},
    )
    _connect_errors_as_operational(engine)
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
