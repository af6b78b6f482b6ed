"""Emptying a test database: every table the models know, so a new one cannot be forgotten."""

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from store_monitor.db.models import Base


async def empty_tables(connection: AsyncConnection) -> None:
    """Delete every row of every table (polls' weekly partitions with their parent), in the
    connection's transaction."""
    names = ", ".join(
        connection.dialect.identifier_preparer.quote(t.name) for t in Base.metadata.sorted_tables
    )
    await connection.execute(sa.text(f"TRUNCATE {names}"))
