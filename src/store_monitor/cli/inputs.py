"""The options the file commands share: instants, the data folder and the four CSV files."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from store_monitor.cli.console import fail
from store_monitor.sources import EARLIEST_POLL, shortened

_LATEST_AS_OF = datetime(9000, 1, 1, tzinfo=UTC)


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


def source(explicit: Path | None, data: Path | None, default_name: str, option: str) -> Path:
    path = explicit if explicit is not None else (data / default_name if data else None)
    if path is None:
        fail(f"give --data DIR or {option} FILE")
    if path.is_dir():
        fail(f"{path}: a folder, not a file (a folder of the files goes with --data)")
    if not path.is_file():
        fail(f"{path}: no such file")
    return path
