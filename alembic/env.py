"""Alembic's entry: runs migrations on an async engine (asyncpg).

The database URL is injectable (tests, CLI, embedded start-up); see `database_url` below.
Programmatic callers may pass an open connection as the Config attribute "connection".
"""

import asyncio
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from store_monitor.db.embedded import database
from store_monitor.db.models import Base, UtcDateTime
from store_monitor.db.partitions import is_poll_partition
from store_monitor.db.session import create_engine
from store_monitor.settings import get_settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str | None:
    """`-x url=...`, else the "url" attribute or sqlalchemy.url option, else
    STORE_MONITOR_DATABASE_URL; None: the embedded server's."""
    url = context.get_x_argument(as_dictionary=True).get("url")
    url = url or config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    return url or get_settings().database_url


def render_item(kind: str, item: Any, autogen_context: Any) -> str | bool:
    """Autogenerate writes our column types as the plain types they store, so that revision
    scripts never import the application."""
    if kind == "type" and isinstance(item, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def include_name(name: str | None, type_: str, parent_names: dict[str, str | None]) -> bool:
    """Autogenerate compares the tables of the models: the weekly partitions of `polls` are
    made at run time, not by revisions."""
    return not (type_ == "table" and name is not None and is_poll_partition(name))


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_item=render_item,
        include_name=include_name,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online(url: str | None) -> None:
    async with database(url, data_dir=get_settings().data_dir) as served:
        engine = create_engine(served, process_name="alembic")
        try:
            async with engine.connect() as connection:
                await connection.run_sync(run_migrations)
                await connection.commit()
        finally:
            await engine.dispose()


def run_migrations_offline(url: str | None) -> None:
    # SQL for a Postgres (the dialect is all that an offline run needs of the URL).
    context.configure(
        url=url or "postgresql://",
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
elif context.is_offline_mode():
    run_migrations_offline(database_url())
else:
    asyncio.run(run_migrations_online(database_url()))
