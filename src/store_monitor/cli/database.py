"""The service's database for a command: the configured one, else the embedded server."""

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from store_monitor.cli.console import fail

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


def with_database(work: Callable[[str], Awaitable[T]]) -> T:
    """`work(url)` on the configured database, else on the embedded server, started for it
    and brought to the latest schema; a database that cannot be had is a one-line error."""
    # Imported here so that the offline commands start without the service's libraries.
    import asyncio

    from store_monitor.cli.configuration import service_settings
    from store_monitor.db.embedded import EmbeddedDatabaseError, database
    from store_monitor.db.migrations import upgrade_to_head

    settings = service_settings()

    async def run() -> T:
        async with database(settings.database_url, data_dir=settings.data_dir) as url:
            if settings.embedded_database:
                await upgrade_to_head(url)
            return await work(url)

    try:
        return asyncio.run(run())
    except EmbeddedDatabaseError as error:
        fail(str(error))


def run_in_session(work: Callable[["AsyncSession"], Awaitable[T]]) -> T:
    """`work` in one transaction on the service's database, committed if it returns."""

    async def in_session(url: str) -> T:
        from store_monitor.db.session import create_engine, create_sessionmaker

        engine = create_engine(url, process_name="store-monitor-cli")
        try:
            async with create_sessionmaker(engine).begin() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return with_database(in_session)
