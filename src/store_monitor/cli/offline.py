"""`report` and `generate`: the commands that need only files, never the service.

`store-monitor report` is timed as a whole process against a plain CSV read (`make bench`):
what only other commands need (settings, rich, asyncio, the service) is imported inside them.
"""

import sys
from pathlib import Path
from typing import Annotated

import typer

from store_monitor import frames, synthetic
from store_monitor.cli.console import fail, say, stderr_is_terminal, step, warn
from store_monitor.cli.inputs import DataDir, HoursFile, PollsFile, ZonesFile, parse_instant, source
from store_monitor.clock import latest_allowed_poll
from store_monitor.engine import compute_report
from store_monitor.formats import daily_csv_bytes, incidents_csv_bytes, report_csv_bytes
from store_monitor.sources import SourceError, read_business_hours, read_polls, read_timezones

# The setting `clock_skew_seconds`, read by typer: the offline report needs no service settings.
_CLOCK_SKEW_ENV = "STORE_MONITOR_CLOCK_SKEW_SECONDS"
_DEFAULT_CLOCK_SKEW_SECONDS = 86_400.0


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
    latest = None if as_of_instant is not None else latest_allowed_poll(clock_skew)
    outputs = [path for path in (output, incidents, daily) if path is not None]
    if len({path.resolve() for path in outputs}) < len(outputs):
        fail("--output, --incidents and --daily must name different files")
    for path in outputs:
        # Before the work, not after it.
        if not path.parent.is_dir():
            fail(f"{path}: no such folder {path.parent}")
    polls_path = source(polls, data, frames.POLLS_FILE, "--polls")
    hours_path = source(hours, data, frames.HOURS_FILE, "--hours")
    zones_path = source(timezones, data, frames.TIMEZONES_FILE, "--timezones")
    try:
        polls_frame = step(
            f"Reading {polls_path.name}", lambda: read_polls(polls_path, latest=latest)
        )
        hours_frame = step(f"Reading {hours_path.name}", lambda: read_business_hours(hours_path))
        zones_frame = step(f"Reading {zones_path.name}", lambda: read_timezones(zones_path))
    except SourceError as error:
        fail(str(error))
    result = step(
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
        warn(f"unknown time zone for {stores}, America/Chicago used instead: {shown}{more}")
    if result.ignored_polls:
        warn(f"{result.ignored_polls:,} polls after {result.now} were ignored")
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
        fail(f"{path}: cannot write: {error.strerror or error}")


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
        disable=not stderr_is_terminal(),
    ) as progress:
        task = progress.add_task("generate", total=stores)
        files = synthetic.generate(
            out,
            stores=stores,
            days=days,
            seed=seed,
            progress=lambda done: progress.update(task, completed=done),
        )
    say(f"Wrote {files.polls:,} polls of {files.stores:,} stores to {out}")
