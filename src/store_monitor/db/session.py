"""The one engine and session factory, shared by the API, the worker, the CLI and the tests."""

import sqlite3
from pathlib import Path
from typing import Any, Final

from sqlalchemy import event, exc
from sqlalchemy.engine import Dialect, make_url
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
    enforce_foreign_keys: bool = True,
    pool_size: int = 5,
    max_overflow: int = 10,
    pool_timeout: float = 30.0,
) -> AsyncEngine:
    """An engine for `postgresql+asyncpg://` or `sqlite+aiosqlite://` URLs.

    `process_name` shows as the Postgres `application_name` (e.g. in `pg_stat_activity`);
    Postgres' JIT compilation is off for the engine's connections. The pool settings are
    SQLAlchemy's (Postgres only): connections kept, opened beyond those, seconds to wait for one.
    On SQLite every transaction is a real one (`BEGIN` at its start), so a transaction reads one
    snapshot and is atomic; `enforce_foreign_keys=False` is for migrations only (SQLite's batch
    migrations drop and recreate tables, which with foreign keys on would cascade deletes).
    """
    if is_sqlite(url):
        prepare_sqlite_file(url)
        engine = create_async_engine(url, connect_args={"factory": _SQLiteConnection})
        _use_sqlite_transactions(engine, enforce_foreign_keys=enforce_foreign_keys)
        return engine
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
    if isinstance(driver_error, sqlite3.Error):
        # sqlite3 calls syntax errors and missing tables "operational" too: go by the code.
        return driver_error.sqlite_errorcode & 0xFF in _SQLITE_UNAVAILABLE
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

# Result codes (primary, the low byte of extended ones) of a database that cannot serve now.
_SQLITE_UNAVAILABLE: Final = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
    }
)
# SQLSTATE prefixes: connection exceptions, invalid authorization, no such database,
# insufficient resources (e.g. too many connections), operator intervention (shutting down).
_POSTGRES_UNAVAILABLE: Final = ("08", "28", "3D000", "53", "57P")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Loaded attributes stay readable after commit: no lazy refresh, which async forbids.
    return async_sessionmaker(engine, expire_on_commit=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def prepare_sqlite_file(url: str) -> None:
    """Create the directory of a file-backed SQLite database, which SQLite will not do."""
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


class _SQLiteConnection(sqlite3.Connection):
    """Rolls back before it closes, so that a closed connection holds no lock.

    A connection closed while a statement of it is unfinished (its cursor still referenced,
    say by the traceback of an await cancelled mid-query, after which SQLAlchemy discards the
    connection) is only half closed by SQLite: it keeps its transaction, and with it the write
    lock, until that cursor is garbage collected. Every other writer meanwhile waits out the
    busy timeout and fails with "database is locked".
    """

    def close(self) -> None:
        if self.in_transaction:
            self.rollback()
        super().close()


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


def _use_sqlite_transactions(engine: AsyncEngine, *, enforce_foreign_keys: bool) -> None:
    # Python's sqlite3 module only opens a transaction before DML, so by default reads are not
    # in one and each SELECT sees its own state. SQLAlchemy's documented remedy: turn the
    # module's handling off and emit BEGIN ourselves.
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA foreign_keys = {'ON' if enforce_foreign_keys else 'OFF'}")
        # WAL lets readers go on while a writer commits; a writer waits for another.
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")
