"""`store-monitor ingest` marks the stores it loaded for the live view, and `store-monitor live`
prints the stores down now once evaluated."""

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from store_monitor.cli import app
from store_monitor.db.models import ReportStatus
from store_monitor.settings import get_settings

from .conftest import Sessions, evaluate

runner = CliRunner()
POLLS = """store_id,status,timestamp_utc
s1,active,2023-01-20 10:00:00.000000 UTC
s1,inactive,2023-01-20 11:00:00.000000 UTC
s1,inactive,2023-01-20 12:00:00.000000 UTC
s2,active,2023-01-20 12:00:00.000000 UTC
"""


@pytest.fixture
def cli_database(
    sessions: Sessions, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    monkeypatch.setenv("STORE_MONITOR_DATABASE_URL", postgres_url)
    monkeypatch.delenv("STORE_MONITOR_REDIS_URL", raising=False)
    get_settings.cache_clear()
    yield postgres_url
    get_settings.cache_clear()


async def test_live_prints_the_stores_down_now(
    sessions: Sessions, cli_database: str, tmp_path: Path
) -> None:
    polls = tmp_path / "store_status.csv"
    polls.write_text(POLLS)
    before = await asyncio.to_thread(runner.invoke, app, ["live"])
    assert before.exit_code == 0, before.output
    assert "no live evaluation yet" in before.stderr

    loaded = await asyncio.to_thread(runner.invoke, app, ["ingest", "--polls", str(polls)])
    assert loaded.exit_code == 0, loaded.output
    # Without a queue the evaluation waits, pending, for the service's sweep: run it here.
    assert await evaluate(sessions) == [ReportStatus.complete]

    table = await asyncio.to_thread(runner.invoke, app, ["live"])
    assert table.exit_code == 0, table.output
    assert table.stdout.splitlines() == [
        "store_id  since (UTC)          minutes  latest poll (UTC)",
        "s1        2023-01-20 10:30:00  90.00    2023-01-20 12:00:00",
    ]
    assert "down now: 1" in table.stderr
    as_json = await asyncio.to_thread(runner.invoke, app, ["live", "--json"])
    assert json.loads(as_json.stdout)["stores"] == [
        {
            "store_id": "s1",
            "since": "2023-01-20T10:30:00+00:00",
            "minutes": 90.0,
            "latest_poll_at": "2023-01-20T12:00:00+00:00",
        }
    ]
