"""The command line: offline report, generator, ingestion, and its answers to bad input."""

import asyncio
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from api.service import embedded_data_dir
from store_monitor import frames, synthetic
from store_monitor.cli import app
from store_monitor.db.embedded import embedded_postgres
from store_monitor.db.session import create_engine
from store_monitor.engine import compute_report
from store_monitor.formats import report_csv_bytes
from store_monitor.settings import get_settings
from store_monitor.sources import read_business_hours, read_polls, read_timezones

runner = CliRunner()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    synthetic.generate(folder, stores=40, days=3, seed=11)
    return folder


def _expected(folder: Path, as_of: datetime | None = None) -> bytes:
    result = compute_report(
        read_polls(folder / frames.POLLS_FILE),
        read_business_hours(folder / frames.HOURS_FILE),
        read_timezones(folder / frames.TIMEZONES_FILE),
        as_of=as_of,
    )
    return report_csv_bytes(result.rows)


def test_report_to_stdout_is_the_engines_csv(data: Path) -> None:
    result = runner.invoke(app, ["report", "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == _expected(data)


def test_report_to_a_file_with_as_of(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    result = runner.invoke(
        app, ["report", "--data", str(data), "--as-of", "2023-01-24T12:00:00Z", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == _expected(data, datetime(2023, 1, 24, 12, tzinfo=UTC))
    assert "polls after 2023-01-24 12:00:00+00:00 were ignored" in result.stderr


def test_report_names_each_file_by_option(data: Path, tmp_path: Path) -> None:
    polls = tmp_path / "polls.csv"
    polls.write_bytes((data / frames.POLLS_FILE).read_bytes())
    result = runner.invoke(app, ["report", "--data", str(data), "--polls", str(polls)])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == _expected(data)


def test_unknown_zones_are_a_warning_on_stderr(data: Path) -> None:
    result = runner.invoke(app, ["report", "--data", str(data)])
    assert "unknown time zone for 1 store, America/Chicago used instead" in result.stderr


def test_a_bad_row_is_one_line_naming_file_line_column_and_value(
    data: Path, tmp_path: Path
) -> None:
    polls = tmp_path / "store_status.csv"
    polls.write_text("store_id,status,timestamp_utc\n1,active,2023-01-22 12:09:39 UTC\n1,up,x\n")
    result = runner.invoke(app, ["report", "--data", str(data), "--polls", str(polls)])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "store_status.csv, line 3, column 'status'" in lines[0]
    assert "'up'" in lines[0]
    assert "Traceback" not in result.output


def test_missing_files_and_bad_as_of_exit_2(data: Path, tmp_path: Path) -> None:
    missing = runner.invoke(app, ["report", "--data", str(tmp_path)])
    assert missing.exit_code == 2
    assert "store_status.csv: no such file" in missing.stderr
    nothing = runner.invoke(app, ["report"])
    assert nothing.exit_code == 2
    bad_as_of = runner.invoke(app, ["report", "--data", str(data), "--as-of", "yesterday"])
    assert bad_as_of.exit_code == 2
    assert "'yesterday' is not a timestamp" in bad_as_of.output


def test_generate_writes_the_three_files(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["generate", "--out", str(tmp_path), "--stores", "5", "--days", "1", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [frames.POLLS_FILE, frames.HOURS_FILE, frames.TIMEZONES_FILE]
    )
    assert "of 5 stores" in result.stderr


@pytest.fixture
def embedded_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The embedded mode's settings, with a data directory of this test; that directory."""
    data_dir = embedded_data_dir(tmp_path)
    monkeypatch.delenv("STORE_MONITOR_DATABASE_URL", raising=False)
    monkeypatch.setenv("STORE_MONITOR_DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    yield data_dir
    get_settings.cache_clear()


def test_ingest_loads_everything_once(data: Path, embedded_database: Path) -> None:
    first = runner.invoke(app, ["ingest", "--data", str(data)])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["ingest", "--data", str(data)])
    assert again.exit_code == 0, again.output
    polls = read_polls(data / frames.POLLS_FILE).height
    assert f"polls: {polls:,} rows read, 0 stored" in again.stderr
    assert _count(embedded_database, "polls") == polls


def test_ingest_validates_every_file_before_writing(
    data: Path, embedded_database: Path, tmp_path: Path
) -> None:
    hours = tmp_path / "menu_hours.csv"
    hours.write_text("store_id,dayOfWeek,start_time_local,end_time_local\n1,9,09:00,17:00\n")
    result = runner.invoke(app, ["ingest", "--data", str(data), "--hours", str(hours)])
    assert result.exit_code == 2
    assert "menu_hours.csv, line 2, column 'dayOfWeek'" in result.stderr
    # Nothing was written, not even the valid polls file: the database was not even touched.
    assert (
        _scalar(embedded_database, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        == 0
    )


def test_db_upgrade_creates_the_schema(embedded_database: Path) -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert _count(embedded_database, "reports") == 0


def test_ingest_refuses_a_data_directory_in_use(data: Path, embedded_database: Path) -> None:
    async def ingest_while_owned() -> None:
        async with embedded_postgres(embedded_database):
            result = await asyncio.to_thread(runner.invoke, app, ["ingest", "--data", str(data)])
        assert result.exit_code == 2
        assert result.stderr == (
            f"error: the embedded database {embedded_database} is in use by another "
            f"store-monitor process (pid {os.getpid()}); stop it, or set STORE_MONITOR_DATA_DIR "
            "to another directory\n"
        )

    asyncio.run(ingest_while_owned())


def _count(data_dir: Path, table: str) -> int:
    return _scalar(data_dir, f"SELECT count(*) FROM {table}")


def _scalar(data_dir: Path, query: str) -> int:
    """The number `query` finds in the embedded database (a sync test: its own event loop)."""

    async def count() -> int:
        async with embedded_postgres(data_dir) as url:
            engine = create_engine(url, process_name="store-monitor-tests")
            try:
                async with engine.connect() as connection:
                    rows = await connection.scalar(sa.text(query))
            finally:
                await engine.dispose()
        assert isinstance(rows, int)
        return rows

    return asyncio.run(count())
