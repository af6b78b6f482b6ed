"""Alembic, driven from code: bring a database to the latest schema, or check that it is there.

The migration scripts live in the project's root `alembic/` directory (found relative to this
file, so an editable install finds them); a wheel may ship them as `store_monitor/alembic/`.
"""

from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from store_monitor.db.session import create_engine

_PACKAGE = Path(__file__).resolve().parent.parent


def script_location() -> Path:
    # Inside the package first (a wheel built with the scripts force-included), then the
    # project tree this module sits in: <root>/src/store_monitor/db/migrations.py.
    candidates = (_PACKAGE / "alembic", _PACKAGE.parent.parent / "alembic")
    for candidate in candidates:
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError(f"Alembic scripts not found in {' or '.join(map(str, candidates))}")


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config for the service's scripts; `url`, if given, is the database to act on."""
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.attributes["url"] = url
    return config


async def upgrade_to_head(url: str) -> None:
    """Apply every migration not yet applied to the database at `url`; a no-op when up to date.

    Runs in one transaction, so a failed migration leaves the schema as it was.
    """
    engine = create_engine(url, process_name="store-monitor-migrations")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade)
    finally:
        await engine.dispose()


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def is_at_head(connection: AsyncConnection) -> bool:
    """Whether the database's schema is the latest one (e.g. for a readiness probe)."""
    return await connection.run_sync(_applied) == _heads()


def _applied(connection: Connection) -> frozenset[str]:
    # Read directly rather than through Alembic's MigrationContext, which logs two INFO lines
    # each time: too chatty for a probe that runs every few seconds.
    if not sa.inspect(connection).has_table("alembic_version"):
        return frozenset()
    return frozenset(
        connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
    )


@lru_cache(maxsize=1)
def _heads() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())
