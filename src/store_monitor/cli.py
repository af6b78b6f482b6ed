"""The `store-monitor` command line: offline reports, synthetic data, and the service's parts."""

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import polars as pl
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from store_monitor import frames, synthetic
from store_monitor.engine import compute_report
from store_monitor.formats import report_csv_bytes
from store_monitor.settings import Settings, get_settings
from store_monitor.sources import SourceError, read_business_hours, read_polls, read_timezones

app = typer.Typer(
    help="Uptime and downtime of restaurants within their business hours.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The service's database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
_stderr = Console(stderr=True, soft_wrap=True)
# Bad input exits with the usage-error code, like a bad option.
_BAD_INPUT = 2
T = TypeVar("T")


def _fail(message: str) -> NoReturn:
    _stderr.print(f"error: {message}", style="red", highlight=False, markup=False)
    raise typer.Exit(_BAD_INPUT)


def _warn(message: str) -> None:
    _stderr.print(f"warning: {message}", style="yellow", highlight=False, markup=False)


@contextmanager
def _status(message: str) -> Iterator[None]:
    """A spinner on a terminal; nothing when stderr is a pipe or file."""
    if _stderr.is_terminal:
        with _stderr.status(message):
            yield
    else:
        yield


def _step(message: str, work: Callable[[], T]) -> T:
    with _status(message):
        return work()


def parse_instant(text: str) -> datetime:
    """An instant given on the command line: ISO 8601 or the polls' format; naive means UTC."""
    cleaned = text.strip().removesuffix(" UTC").replace("Z", "+00:00")
    try:
        instant = datetime.fromisoformat(cleaned)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a timestamp such as 2023-01-25 18:00:00 or 2023-01-25T18:00:00Z"
        ) from None
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="Folder holding store_status.csv, menu_hours.csv and timezones.csv.",
        file_okay=False,
    ),
]
PollsFile = Annotated[Path | None, typer.Option("--polls", help="Polls CSV (overrides --data).")]
HoursFile = Annotated[
    Path | None, typer.Option("--hours", help="Business hours CSV (overrides --data).")
]
ZonesFile = Annotated[
    Path | None, typer.Option("--timezones", help="Time zones CSV (overrides --data).")
]


def _source(explicit: Path | None, data: Path | None, default_name: str, option: str) -> Path:
    path = explicit if explicit is not None else (data / default_name if data else None)
    if path is None:
        _fail(f"give --data DIR or {option} FILE")
    if not path.is_file():
        _fail(f"{path}: no such file")
    return path


@app.command()
def report(
    data: DataDir = None,
    polls: PollsFile = None,
    hours: HoursFile = None,
    timezones: ZonesFile = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="End of the report's windows (UTC). Default: the latest poll."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the CSV here instead of stdout.")
    ] = None,
) -> None:
    """Compute the uptime/downtime report from CSV files, offline."""
    as_of_instant = parse_instant(as_of) if as_of is not None else None
    polls_path = _source(polls, data, frames.POLLS_FILE, "--polls")
    hours_path = _source(hours, data, frames.HOURS_FILE, "--hours")
    zones_path = _source(timezones, data, frames.TIMEZONES_FILE, "--timezones")
    try:
        polls_frame = _step(f"Reading {polls_path.name}", lambda: read_polls(polls_path))
        hours_frame = _step(f"Reading {hours_path.name}", lambda: read_business_hours(hours_path))
        zones_frame = _step(f"Reading {zones_path.name}", lambda: read_timezones(zones_path))
    except SourceError as error:
        _fail(str(error))
    result = _step(
        "Computing the report",
        lambda: compute_report(polls_frame, hours_frame, zones_frame, as_of=as_of_instant),
    )
    if result.unknown_timezones:
        count = len(result.unknown_timezones)
        shown = ", ".join(result.unknown_timezones[:5])
        more = f" and {count - 5} more" if count > 5 else ""
        stores = "1 store" if count == 1 else f"{count:,} stores"
        _warn(f"unknown time zone for {stores}, America/Chicago used instead: {shown}{more}")
    if result.ignored_polls:
        _warn(f"{result.ignored_polls:,} polls after {result.now} were ignored")
    csv = report_csv_bytes(result.rows)
    if output is None:
        sys.stdout.buffer.write(csv)
        sys.stdout.flush()
    else:
        output.write_bytes(csv)


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Folder to write the three CSV files into.")],
    stores: Annotated[int, typer.Option(min=1, help="Number of stores.")] = 1000,
    days: Annotated[int, typer.Option(min=1, help="Days of roughly hourly polls.")] = 8,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 0,
) -> None:
    """Write a realistic synthetic data set (the real files' names, headers and formats)."""
    with Progress(
        TextColumn("Generating polls"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("stores"),
        TimeElapsedColumn(),
        console=_stderr,
        disable=not _stderr.is_terminal,
    ) as progress:
        task = progress.add_task("generate", total=stores)
        files = synthetic.generate(
            out,
            stores=stores,
            days=days,
            seed=seed,
            progress=lambda done: progress.update(task, completed=done),
        )
    _stderr.print(
        f"Wrote {files.polls:,} polls of {files.stores:,} stores to {out}",
        highlight=False,
        markup=False,
    )


@app.command()
def ingest(
    data: DataDir = None,
    polls: PollsFile = None,
    hours: HoursFile = None,
    timezones: ZonesFile = None,
) -> None:
    """Load CSV files into the service's database (STORE_MONITOR_DATABASE_URL, else embedded).

    --data loads whichever of the three standard files the folder has. Every file is validated
    before anything is written, then all are loaded in one transaction: polls already stored are
    not added twice; the hours and time zone of each store in a new file replace its old ones.
    """
    chosen = {
        "polls": (polls, frames.POLLS_FILE),
        "hours": (hours, frames.HOURS_FILE),
        "timezones": (timezones, frames.TIMEZONES_FILE),
    }
    paths: dict[str, Path] = {}
    for kind, (explicit, default_name) in chosen.items():
        if explicit is not None:
            paths[kind] = _source(explicit, None, default_name, f"--{kind}")
        elif data is not None and (data / default_name).is_file():
            paths[kind] = data / default_name
    if not paths:
        _fail("nothing to load: give --data DIR, --polls, --hours or --timezones")
    readers: dict[str, Callable[[Path], pl.DataFrame]] = {
        "polls": read_polls,
        "hours": read_business_hours,
        "timezones": read_timezones,
    }
    loaded: dict[str, pl.DataFrame] = {}
    try:
        for kind, path in paths.items():
            loaded[kind] = _step(f"Reading {path.name}", partial(readers[kind], path))
    except SourceError as error:
        _fail(str(error))
    results = _step("Loading into the database", lambda: _with_database(partial(_load, loaded)))
    for kind, (received, added, stores) in results.items():
        _stderr.print(
            f"{kind}: {received:,} rows read, {added:,} stored, {stores:,} stores",
            highlight=False,
            markup=False,
        )


def _with_database(work: Callable[[str], Awaitable[T]]) -> T:
    """`work(url)` on the configured database, else on the embedded server, started for it
    and brought to the latest schema; a database that cannot be had is a one-line error."""
    # Imported here so that the offline commands start without the service's libraries.
    from store_monitor.db.embedded import EmbeddedDatabaseError, database
    from store_monitor.db.migrations import upgrade_to_head

    settings = get_settings()

    async def run() -> T:
        async with database(settings.database_url, data_dir=settings.data_dir) as url:
            if settings.embedded_database:
                await upgrade_to_head(url)
            return await work(url)

    try:
        return asyncio.run(run())
    except EmbeddedDatabaseError as error:
        _fail(str(error))


async def _load(frames: dict[str, pl.DataFrame], url: str) -> dict[str, tuple[int, int, int]]:
    """Store validated frames in one transaction: (rows read, rows stored, stores) per kind."""
    from store_monitor import ingest as ingestion
    from store_monitor.db.session import create_engine, create_sessionmaker

    loaders = {
        "polls": ingestion.ingest_polls,
        "hours": ingestion.ingest_business_hours,
        "timezones": ingestion.ingest_timezones,
    }
    engine = create_engine(url, process_name="store-monitor-cli")
    try:
        async with create_sessionmaker(engine).begin() as session:
            results = {kind: await loaders[kind](session, frame) for kind, frame in frames.items()}
    finally:
        await engine.dispose()
    return {kind: (r.received, r.added, r.stores) for kind, r in results.items()}


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run the HTTP API (and, without STORE_MONITOR_REDIS_URL, its in-process job runner)."""
    import uvicorn

    from store_monitor.api.app import create_app
    from store_monitor.logs import configure_logging

    settings = get_settings()
    overrides = {"host": host, "port": port}
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    if settings.embedded_database:
        from store_monitor.db.embedded import EmbeddedDatabaseError, check_free

        # The app would refuse a busy data directory too, but in a traceback of uvicorn's.
        try:
            check_free(settings.data_dir)
        except EmbeddedDatabaseError as error:
            _fail(str(error))
    configure_logging(settings.log_level, json=settings.log_json)
    # On SIGTERM or SIGINT uvicorn stops accepting connections, lets the requests in flight
    # finish (for up to timeout_graceful_shutdown seconds), then runs the lifespan's shutdown.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's loggers propagate to ours: one format, with request ids
        timeout_graceful_shutdown=30,
    )


@app.command()
def worker() -> None:
    """Run an Arq worker that computes queued reports (needs STORE_MONITOR_REDIS_URL)."""
    from arq.worker import Worker

    from store_monitor.logs import configure_logging
    from store_monitor.worker import worker_settings

    settings = get_settings()
    try:
        options = worker_settings(settings)
    except ValueError as error:
        _fail(str(error))
    configure_logging(settings.log_level, json=settings.log_json)
    # On SIGTERM or SIGINT Arq cancels the running jobs: each puts its report back to pending
    # and stays queued, for the next worker to run again. Arq looks for new jobs every
    # `poll_delay` seconds, half a second by default: as long again before a report starts.
    Worker(**options, poll_delay=0.05).run()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema up to date (Alembic migrations to head).

    Without STORE_MONITOR_DATABASE_URL: the embedded server's, initialised if new."""
    from store_monitor.db.migrations import upgrade_to_head

    _with_database(upgrade_to_head)
    _stderr.print("database schema is up to date", highlight=False, markup=False)


@app.command()
def openapi() -> None:
    """Print the service's OpenAPI document (the committed openapi.json is this output)."""
    from store_monitor.api.app import create_app

    document = create_app(Settings()).openapi()
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False) + "\n")


if __name__ == "__main__":
    app()
