"""`live`: the stores down now, as the latest live evaluation left them in the database."""

import json
import sys
from datetime import datetime
from typing import Annotated

import typer

from store_monitor.cli.console import say
from store_monitor.cli.database import run_in_session


def live(
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object, as GET /live answers.")
    ] = False,
) -> None:
    """Print the stores down now (STORE_MONITOR_DATABASE_URL, else embedded), longest first:
    since when (UTC) and for how many minutes at N, the latest poll of all stores the latest
    evaluation saw."""
    from store_monitor import live as live_view

    view = run_in_session(lambda session: live_view.down_now(session, owner_id=None))
    now = None if view.now is None else view.now.isoformat()
    if as_json:
        stores = [
            {
                "store_id": store.store_id,
                "since": store.since.isoformat(),
                "minutes": store.minutes,
                "latest_poll_at": store.latest_poll_at.isoformat(),
            }
            for store in view.stores
        ]
        sys.stdout.write(json.dumps({"now": now, "total": view.total, "stores": stores}) + "\n")
        return
    if view.now is None:
        say("no live evaluation yet (it follows the first ingest)")
    else:
        behind = "" if view.now == view.latest_poll_at else f"; latest poll {view.latest_poll_at}"
        say(f"N = {view.now}; down now: {view.total:,}{behind}")
    rows = [("store_id", "since (UTC)", "minutes", "latest poll (UTC)")]
    rows += [
        (s.store_id, _instant(s.since), f"{s.minutes:.2f}", _instant(s.latest_poll_at))
        for s in view.stores
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        line = "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True))
        sys.stdout.write(line.rstrip() + "\n")


def _instant(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%d %H:%M:%S")
