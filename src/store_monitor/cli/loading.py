"""`ingest`: validated CSV files loaded into the service's database in one transaction."""

from datetime import datetime
from functools import partial
from pathlib import Path

from store_monitor.cli.console import fail, say, step
from store_monitor.cli.database import with_database
from store_monitor.cli.inputs import DataDir, HoursFile, OwnersFile, PollsFile, ZonesFile, source
from store_monitor.clock import latest_allowed_poll
from store_monitor.sources import (
    HOURS_CSV,
    OWNERS_CSV,
    POLLS_CSV,
    TIMEZONES_CSV,
    CsvFile,
    SourceError,
)


def ingest(
    data: DataDir = None,
    polls: PollsFile = None,
    hours: HoursFile = None,
    timezones: ZonesFile = None,
    owners: OwnersFile = None,
) -> None:
    """Load CSV files into the service's database (STORE_MONITOR_DATABASE_URL, else embedded).

    --data loads whichever of the four standard files the folder has. All are loaded in one
    transaction, each validated and stored a chunk at a time (memory does not grow with the
    file), so a bad row anywhere stores nothing: polls already stored are not added twice; the
    hours and time zone of each store in a new file replace its old ones, and the stores of
    each owner in store_owners.csv replace that owner's old ones.
    """
    chosen = {
        "polls": (polls, POLLS_CSV),
        "hours": (hours, HOURS_CSV),
        "timezones": (timezones, TIMEZONES_CSV),
        "owners": (owners, OWNERS_CSV),
    }
    paths: dict[str, tuple[CsvFile, Path]] = {}
    for kind, (explicit, file) in chosen.items():
        if explicit is not None:
            paths[kind] = file, source(explicit, None, file.file_name, f"--{kind}")
        elif data is not None and (data / file.file_name).is_file():
            paths[kind] = file, data / file.file_name
    if not paths:
        fail("nothing to load: give --data DIR, --polls, --hours, --timezones or --owners")

    from store_monitor.cli.configuration import service_settings
    from store_monitor.ingest import ValueRefused

    settings = service_settings()
    latest = latest_allowed_poll(settings.clock_skew_seconds)
    try:
        results = step(
            "Loading into the database",
            lambda: with_database(
                partial(_load, paths, latest, settings.redis_url, settings.queue_name)
            ),
        )
    except (SourceError, ValueRefused) as error:
        fail(str(error))
    for kind, (received, added, stores) in results.items():
        say(f"{kind}: {received:,} rows read, {added:,} stored, {stores:,} stores")


async def _load(
    paths: dict[str, tuple[CsvFile, Path]],
    latest: datetime,
    redis_url: str | None,
    queue_name: str,
    url: str,
) -> dict[str, tuple[int, int, int]]:
    """Validate and store files in one transaction: (rows read, rows stored, stores) per kind.
    Then queue the live evaluation of the changes on the workers' queue, if there is one; else
    (the embedded mode) the service's sweep queues it when it runs."""
    from store_monitor import ingest as ingestion
    from store_monitor import live
    from store_monitor.db.session import create_engine, create_sessionmaker
    from store_monitor.work.arq import ArqQueue

    engine = create_engine(url, process_name="store-monitor-cli")
    results: dict[str, tuple[int, int, int]] = {}
    try:
        sessionmaker = create_sessionmaker(engine)
        async with sessionmaker.begin() as session:
            for kind, (file, path) in paths.items():
                result = await ingestion.load_file(
                    session, file, ingestion.file_blocks(path), name=path.name, latest=latest
                )
                results[kind] = (result.received, result.added, result.stores)
        if redis_url is not None:
            try:
                queue = await ArqQueue.connect(
                    redis_url, queue_name=queue_name, job_timeout_seconds=0
                )
            except Exception as error:
                say(f"the live evaluation is left to the workers' sweep (no queue: {error})")
            else:
                try:
                    async with sessionmaker() as session:
                        await live.queue_next(session, queue)
                finally:
                    await queue.close()
    finally:
        await engine.dispose()
    return results
