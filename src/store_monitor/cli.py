"""The `store-monitor` command line: offline reports, synthetic data, and the service's parts.

`store-monitor report` is timed as a whole process against a plain CSV read (`make bench`):
what only other commands need (settings, rich, asyncio, the service) is imported inside them.
"""

import json
import re
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import polars as pl
import typer

from store_monitor import frames, synthetic
from store_monitor.engine import compute_report
from store_monitor.formats import daily_csv_bytes, incidents_csv_bytes, report_csv_bytes
from store_monitor.sources import (
    EARLIEST_POLL,
    SourceError,
    read_business_hours,
    read_owners,
    read_polls,
    read_timezones,
    shortened,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


app = typer.Typer(
    help="Uptime and downtime of restaurants within their business hours.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The service's database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
# Bad input exits with the usage-error code, like a bad option.
_BAD_INPUT = 2
_LATEST_AS_OF = datetime(9000, 1, 1, tzinfo=UTC)
# The setting `clock_skew_seconds`, read by typer: the offline report needs no service settings.
_CLOCK_SKEW_ENV = "STORE_MONITOR_CLOCK_SKEW_SECONDS"
_DEFAULT_CLOCK_SKEW_SECONDS = 86_400.0
_DURATION = re.compile(r"(\d+)\s*([mhdw])")
_DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# uvicorn's h11 parser buffers at most this much of a request's head (the app checks the rest).
_MAX_HEAD_BYTES = 64 * 1024
T = TypeVar("T")


class KeyScopeOption(StrEnum):
    """`--scope`: the names of `store_monitor.db.models.KeyScope`, kept in step by a test."""

    admin = "admin"
    ingest = "ingest"
    reports = "reports"
    metrics = "metrics"


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(_BAD_INPUT)


def _warn(message: str) -> None:
    typer.secho(f"warning: {message}", err=True, fg="yellow")


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


@contextmanager
def _status(message: str) -> Iterator[None]:
    """A spinner on a terminal; nothing when stderr is a pipe or file."""
    if _stderr_is_terminal():
        from rich.console import Console

        with Console(stderr=True).status(message):
            yield
    else:
        yield


def _step(message: str, work: Callable[[], T]) -> T:
    with _status(message):
        return work()


def parse_instant(text: str) -> datetime:
    """An instant given on the command line: ISO 8601 or the polls' format; naive means UTC.
    From EARLIEST_POLL, like the polls, to before the year 9000 (the calendar's end is near)."""
    cleaned = text.strip().removesuffix(" UTC").replace("Z", "+00:00")
    try:
        instant = datetime.fromisoformat(cleaned)
        instant = instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)
    except (ValueError, OverflowError):
        raise typer.BadParameter(
            f"{shortened(text)} is not a timestamp such as 2023-01-25 18:00:00 "
            "or 2023-01-25T18:00:00Z"
        ) from None
    if not EARLIEST_POLL <= instant < _LATEST_AS_OF:
        raise typer.BadParameter(
            f"{shortened(text)} is not from {EARLIEST_POLL:%Y-%m-%d} to before "
            f"{_LATEST_AS_OF:%Y-%m-%d}"
        )
    return instant


DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="Folder holding store_status.csv, menu_hours.csv and timezones.csv "
        "(and, for ingest, store_owners.csv if present).",
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
OwnersFile = Annotated[
    Path | None, typer.Option("--owners", help="Store owners CSV (overrides --data).")
]


def _latest_allowed_poll(clock_skew_seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=clock_skew_seconds)


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
    incidents: Annotated[
        Path | None,
        typer.Option(help="Also write each store's incidents in the week to this CSV file."),
    ] = None,
    daily: Annotated[
        Path | None,
        typer.Option(help="Also write each store's figures per local date to this CSV file."),
    ] = None,
    clock_skew: Annotated[
        float,
        typer.Option(
            "--clock-skew",
            min=0,
            envvar=_CLOCK_SKEW_ENV,
            help="Seconds a poll may be later than this machine's clock (without --as-of).",
        ),
    ] = _DEFAULT_CLOCK_SKEW_SECONDS,
) -> None:
    """Compute the uptime/downtime report from CSV files, offline (and its incidents and daily
    figures, if asked).

    Polls must be from 2000-01-01 to the current time plus the clock skew; with --as-of there is
    no upper bound (polls after it are left out).
    """
    as_of_instant = parse_instant(as_of) if as_of is not None else None
    latest = None if as_of_instant is not None else _latest_allowed_poll(clock_skew)
    outputs = [path for path in (output, incidents, daily) if path is not None]
    if len({path.resolve() for path in outputs}) < len(outputs):
        _fail("--output, --incidents and --daily must name different files")
    for path in outputs:
        # Before the work, not after it.
        if not path.parent.is_dir():
            _fail(f"{path}: no such folder {path.parent}")
    polls_path = _source(polls, data, frames.POLLS_FILE, "--polls")
    hours_path = _source(hours, data, frames.HOURS_FILE, "--hours")
    zones_path = _source(timezones, data, frames.TIMEZONES_FILE, "--timezones")
    try:
        polls_frame = _step(
            f"Reading {polls_path.name}", lambda: read_polls(polls_path, latest=latest)
        )
        hours_frame = _step(f"Reading {hours_path.name}", lambda: read_business_hours(hours_path))
        zones_frame = _step(f"Reading {zones_path.name}", lambda: read_timezones(zones_path))
    except SourceError as error:
        _fail(str(error))
    result = _step(
        "Computing the report",
        lambda: compute_report(
            polls_frame,
            hours_frame,
            zones_frame,
            as_of=as_of_instant,
            incidents_and_daily=incidents is not None or daily is not None,
        ),
    )
    if result.unknown_timezones:
        count = len(result.unknown_timezones)
        shown = ", ".join(result.unknown_timezones[:5])
        more = f" and {count - 5} more" if count > 5 else ""
        stores = "1 store" if count == 1 else f"{count:,} stores"
        _warn(f"unknown time zone for {stores}, America/Chicago used instead: {shown}{more}")
    if result.ignored_polls:
        _warn(f"{result.ignored_polls:,} polls after {result.now} were ignored")
    if incidents is not None and result.incidents is not None:
        _write(incidents, incidents_csv_bytes(result.incidents))
    if daily is not None and result.daily is not None:
        _write(daily, daily_csv_bytes(result.daily))
    csv = report_csv_bytes(result.rows)
    if output is None:
        sys.stdout.buffer.write(csv)
        sys.stdout.flush()
    else:
        _write(output, csv)


def _write(path: Path, content: bytes) -> None:
    try:
        path.write_bytes(content)
    except OSError as error:
        _fail(f"{path}: cannot write: {error.strerror or error}")


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Folder to write the three CSV files into.")],
    stores: Annotated[int, typer.Option(min=1, help="Number of stores.")] = 1000,
    days: Annotated[int, typer.Option(min=1, help="Days of roughly hourly polls.")] = 8,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 0,
) -> None:
    """Write a realistic synthetic data set (the real files' names, headers and formats)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("Generating polls"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("stores"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not _stderr_is_terminal(),
    ) as progress:
        task = progress.add_task("generate", total=stores)
        files = synthetic.generate(
            out,
            stores=stores,
            days=days,
            seed=seed,
            progress=lambda done: progress.update(task, completed=done),
        )
    _say(f"Wrote {files.polls:,} polls of {files.stores:,} stores to {out}")


@app.command()
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
        "polls": (polls, frames.POLLS_FILE),
        "hours": (hours, frames.HOURS_FILE),
        "timezones": (timezones, frames.TIMEZONES_FILE),
        "owners": (owners, frames.OWNERS_FILE),
    }
    paths: dict[str, Path] = {}
    for kind, (explicit, default_name) in chosen.items():
        if explicit is not None:
            paths[kind] = _source(explicit, None, default_name, f"--{kind}")
        elif data is not None and (data / default_name).is_file():
            paths[kind] = data / default_name
    if not paths:
        _fail("nothing to load: give --data DIR, --polls, --hours, --timezones or --owners")

    from store_monitor.ingest import ValueRefused
    from store_monitor.settings import get_settings

    latest = get_settings().latest_allowed_poll
    try:
        results = _step(
            "Loading into the database", lambda: _with_database(partial(_load, paths, latest))
        )
    except (SourceError, ValueRefused) as error:
        _fail(str(error))
    for kind, (received, added, stores) in results.items():
        _say(f"{kind}: {received:,} rows read, {added:,} stored, {stores:,} stores")


def _with_database(work: Callable[[str], Awaitable[T]]) -> T:
    """`work(url)` on the configured database, else on the embedded server, started for it
    and brought to the latest schema; a database that cannot be had is a one-line error."""
    # Imported here so that the offline commands start without the service's libraries.
    import asyncio

    from store_monitor.db.embedded import EmbeddedDatabaseError, database
    from store_monitor.db.migrations import upgrade_to_head
    from store_monitor.settings import get_settings

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


async def _load(
    paths: dict[str, Path], latest: datetime, url: str
) -> dict[str, tuple[int, int, int]]:
    """Validate and store files in one transaction: (rows read, rows stored, stores) per kind."""
    from store_monitor import ingest as ingestion
    from store_monitor.db.session import create_engine, create_sessionmaker

    sources: dict[str, tuple[Callable[..., ingestion.Load], Callable[..., pl.DataFrame]]] = {
        "polls": (ingestion.PollsLoad, partial(read_polls, latest=latest)),
        "hours": (ingestion.HoursLoad, read_business_hours),
        "timezones": (ingestion.TimezonesLoad, read_timezones),
        "owners": (ingestion.OwnersLoad, read_owners),
    }
    engine = create_engine(url, process_name="store-monitor-cli")
    results: dict[str, tuple[int, int, int]] = {}
    try:
        async with create_sessionmaker(engine).begin() as session:
            for kind, path in paths.items():
                load, read = sources[kind]
                result = await ingestion.load_csv(
                    load(session),
                    ingestion.file_blocks(path),
                    name=path.name,
                    read=partial(read, name=path.name),
                )
                results[kind] = (result.received, result.added, result.stores)
    finally:
        await engine.dispose()
    return results


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run the HTTP API (and, without STORE_MONITOR_REDIS_URL, its in-process job runner)."""
    import uvicorn

    from store_monitor.api.app import create_app
    from store_monitor.logs import configure_logging
    from store_monitor.settings import get_settings

    settings = get_settings()
    overrides = {"host": host, "port": port}
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    problem = settings.auth_problem()
    if problem is not None:
        _fail(problem)
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
        h11_max_incomplete_event_size=_MAX_HEAD_BYTES,
    )


@app.command()
def worker() -> None:
    """Run an Arq worker that computes queued reports (needs STORE_MONITOR_REDIS_URL)."""
    from store_monitor.logs import configure_logging
    from store_monitor.settings import get_settings
    from store_monitor.worker import OutlastingWorker, worker_settings

    settings = get_settings()
    try:
        options = worker_settings(settings)
    except ValueError as error:
        _fail(str(error))
    configure_logging(settings.log_level, json=settings.log_json)
    # On SIGTERM or SIGINT Arq cancels the running jobs: each puts its report back to pending,
    # and a live worker's sweep queues its next attempt. Arq looks for new jobs every
    # `poll_delay` seconds, half a second by default: as long again before a report starts.
    # The worker outlasts Redis outages (see OutlastingWorker).
    OutlastingWorker(**options, poll_delay=0.05).run()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema up to date (Alembic migrations to head).

    Without STORE_MONITOR_DATABASE_URL: the embedded server's, initialised if new."""
    from store_monitor.db.migrations import upgrade_to_head

    _with_database(upgrade_to_head)
    _say("database schema is up to date")


@app.command()
def openapi() -> None:
    """Print the service's OpenAPI document (the committed openapi.json is this output)."""
    from store_monitor.api.app import create_app
    from store_monitor.settings import Settings

    document = create_app(Settings()).openapi()
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False) + "\n")


def _run_in_session(work: Callable[["AsyncSession"], Awaitable[T]]) -> T:
    """`work` in one transaction on the service's database, committed if it returns."""

    async def in_session(url: str) -> T:
        from store_monitor.db.session import create_engine, create_sessionmaker

        engine = create_engine(url, process_name="store-monitor-cli")
        try:
            async with create_sessionmaker(engine).begin() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return _with_database(in_session)


def parse_expiry(text: str, *, now: datetime) -> datetime:
    """`--expires`: a duration from now (`90d`, `12h`, `30m`, `2w`) or an instant."""
    duration = _DURATION.fullmatch(text.strip().lower())
    if duration is not None:
        amount, unit = duration.groups()
        return now + timedelta(**{_DURATION_UNITS[unit]: int(amount)})
    try:
        return parse_instant(text)
    except typer.BadParameter:
        raise typer.BadParameter(
            f"{text!r} is neither a duration such as 90d, 12h, 30m or 2w nor an instant "
            "such as 2027-01-01T00:00:00Z"
        ) from None


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A unique name for the key, e.g. who holds it.")],
    scope: Annotated[
        KeyScopeOption | None,
        typer.Option(help="What the key may do (see docs/access.md)."),
    ] = None,
    owner: Annotated[
        str | None,
        typer.Option(help="An owner key instead: reports narrowed to this owner's stores."),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(help="Expiry: a duration (90d, 12h) or an instant. Default: never."),
    ] = None,
) -> None:
    """Make an API key; its secret is printed once, as the last line of stdout."""
    from store_monitor import access
    from store_monitor.db.models import KeyScope

    if (scope is None) == (owner is None):
        _fail("give either --scope or --owner")
    now = datetime.now(UTC)
    expires_at = parse_expiry(expires, now=now) if expires is not None else None
    server_key = _server_key()
    chosen = KeyScope(scope.value) if scope is not None else None
    try:
        created = _run_in_session(
            lambda session: access.create_key(
                session,
                server_key=server_key,
                name=name,
                scope=chosen,
                owner_id=owner,
                expires_at=expires_at,
                now=now,
            )
        )
    except access.InvalidKeyRequest as error:
        _fail(str(error))
    what = f"scope {chosen.value}" if chosen is not None else f"owner {created.key.owner_id}"
    until = f", expires {expires_at.isoformat()}" if expires_at is not None else ""
    _say(
        f"created key {name!r} ({what}{until}), prefix {created.key.prefix}; "
        "its secret follows and is not shown again:"
    )
    sys.stdout.write(created.secret + "\n")
    sys.stdout.flush()


@keys_app.command("list")
def keys_list() -> None:
    """List the API keys: name, prefix, scope or owner, dates, state (never the secrets)."""
    from store_monitor import access

    now = datetime.now(UTC)
    keys = _run_in_session(access.list_keys)
    rows = [("name", "prefix", "scope/owner", "state", "created", "expires", "last used")]
    for key in keys:
        state = (
            "revoked"
            if key.revoked_at is not None
            else "expired"
            if key.expires_at is not None and key.expires_at <= now
            else "active"
        )
        rows.append(
            (
                key.name,
                key.prefix,
                key.scope.value if key.scope is not None else f"owner:{key.owner_id}",
                state,
                _when(key.created_at),
                _when(key.expires_at),
                _when(key.last_used_at),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        line = "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True))
        sys.stdout.write(line.rstrip() + "\n")


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke an API key at once; requests with it are refused from now on."""
    from store_monitor import access

    try:
        key = _run_in_session(
            lambda session: access.revoke_key(session, name, now=datetime.now(UTC))
        )
    except access.KeyNotFound as error:
        _fail(str(error))
    _say(f"key {name!r} ({key.prefix}) revoked at {_when(key.revoked_at)}")


def _server_key() -> bytes:
    from store_monitor.settings import get_settings

    secret_key = get_settings().secret_key
    if secret_key is None or not secret_key.get_secret_value().strip():
        _fail("STORE_MONITOR_SECRET_KEY is not set: keys are hashed with it, set the server's")
    return secret_key.get_secret_value().encode()


def _when(instant: datetime | None) -> str:
    return instant.isoformat(timespec="seconds") if instant is not None else "-"


if __name__ == "__main__":
    app()
