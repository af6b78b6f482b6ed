"""The command line: offline report, generator, ingestion, and its answers to bad input."""

import asyncio
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from store_monitor import frames, synthetic
from store_monitor.cli import app
from store_monitor.db.embedded import embedded_postgres
from store_monitor.db.session import create_engine
from store_monitor.engine import compute_report
from store_monitor.formats import daily_csv_bytes, incidents_csv_bytes, report_csv_bytes
from store_monitor.settings import get_settings
from store_monitor.sources import read_business_hours, read_polls, read_timezones
from support.service import embedded_data_dir

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
    folder = runner.invoke(app, ["report", "--data", str(data), "--polls", str(tmp_path)])
    assert folder.exit_code == 2
    assert f"{tmp_path}: a folder, not a file" in folder.stderr
    nothing = runner.invoke(app, ["report"])
    assert nothing.exit_code == 2
    bad_as_of = runner.invoke(app, ["report", "--data", str(data), "--as-of", "yesterday"])
    assert bad_as_of.exit_code == 2
    assert "'yesterday' is not a timestamp" in bad_as_of.output


def _one_line_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def _polls_with(tmp_path: Path, data: Path, *rows: str) -> Path:
    polls = tmp_path / "store_status.csv"
    polls.write_bytes(
        (data / frames.POLLS_FILE).read_bytes() + "".join(r + "\n" for r in rows).encode()
    )
    return polls


@pytest.mark.parametrize(
    "stamp", ["9999-12-31 23:59:59.999999 UTC", "2999-01-01 00:00:00.000000 UTC"]
)
def test_report_refuses_polls_later_than_the_clock_plus_skew(
    data: Path, tmp_path: Path, stamp: str
) -> None:
    polls = _polls_with(tmp_path, data, f"1,active,{stamp}")
    result = runner.invoke(app, ["report", "--data", str(data), "--polls", str(polls)])
    line = _one_line_error(result)
    assert f"column 'timestamp_utc': {stamp!r} is after" in line
    assert "store_status.csv, line " in line


def test_as_of_lifts_the_upper_bound_of_poll_times(data: Path, tmp_path: Path) -> None:
    polls = _polls_with(tmp_path, data, "1,active,9999-12-31 23:59:59.999999 UTC")
    as_of = "2023-01-24T12:00:00Z"
    result = runner.invoke(
        app, ["report", "--data", str(data), "--polls", str(polls), "--as-of", as_of]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == _expected(data, datetime(2023, 1, 24, 12, tzinfo=UTC))


def test_the_clock_skew_comes_from_the_setting(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    polls = _polls_with(tmp_path, data, f"1,active,{soon}")
    args = ["report", "--data", str(data), "--polls", str(polls)]
    assert runner.invoke(app, args).exit_code == 0
    monkeypatch.setenv("STORE_MONITOR_CLOCK_SKEW_SECONDS", "3600")
    assert "is after" in _one_line_error(runner.invoke(app, args))
    assert runner.invoke(app, [*args, "--clock-skew", "10800"]).exit_code == 0


def test_report_refuses_polls_before_2000_even_with_as_of(data: Path, tmp_path: Path) -> None:
    polls = _polls_with(tmp_path, data, "1,active,0001-01-01 00:00:00.000000 UTC")
    for extra in ([], ["--as-of", "2023-01-24T12:00:00Z"]):
        result = runner.invoke(app, ["report", "--data", str(data), "--polls", str(polls), *extra])
        assert "is before 2000-01-01" in _one_line_error(result)


@pytest.mark.parametrize("as_of", ["1970-01-01T00:10:00Z", "1999-12-31T23:59:59Z", "9999-12-31"])
def test_as_of_outside_the_range_is_refused(data: Path, as_of: str) -> None:
    result = runner.invoke(app, ["report", "--data", str(data), "--as-of", as_of])
    assert result.exit_code == 2
    # Typer draws a box around the message, wrapped to the terminal's width.
    text = "".join(result.output.replace("│", "").split())
    assert "isnotfrom2000-01-01tobefore9000-01-01" in text
    assert "Traceback" not in result.output


@pytest.mark.parametrize("store_id", ["a\x00b", "=HYPERLINK(1)", "x" * 3000])
def test_report_and_ingest_refuse_bad_store_ids_in_one_line(
    data: Path, tmp_path: Path, embedded_database: Path, store_id: str
) -> None:
    polls = _polls_with(tmp_path, data, f"{store_id},active,2023-01-22 12:09:39.388884 UTC")
    for command in ("report", "ingest"):
        result = runner.invoke(app, [command, "--data", str(data), "--polls", str(polls)])
        line = _one_line_error(result)
        assert "column 'store_id'" in line
        assert len(line) < 500
    # Refused before anything was written: not even the schema was made.
    polls_tables = "SELECT count(*) FROM pg_tables WHERE tablename = 'polls'"
    assert _scalar(embedded_database, polls_tables) == 0 or _count(embedded_database, "polls") == 0


def test_report_writes_incidents_and_daily_figures_too(data: Path, tmp_path: Path) -> None:
    out, incidents, daily = tmp_path / "report.csv", tmp_path / "inc.csv", tmp_path / "daily.csv"
    result = runner.invoke(
        app,
        [
            *("report", "--data", str(data), "-o", str(out)),
            *("--incidents", str(incidents), "--daily", str(daily)),
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == _expected(data)
    engine = compute_report(
        read_polls(data / frames.POLLS_FILE),
        read_business_hours(data / frames.HOURS_FILE),
        read_timezones(data / frames.TIMEZONES_FILE),
    )
    assert engine.incidents is not None
    assert engine.daily is not None
    assert incidents.read_bytes() == incidents_csv_bytes(engine.incidents)
    assert daily.read_bytes() == daily_csv_bytes(engine.daily)

    incident_lines = incidents.read_text().splitlines()
    assert incident_lines[0] == "store_id,started_at,ended_at,minutes"
    instant = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"
    row = re.compile(rf"[^,]+,{instant},{instant},\d+\.\d\d")
    assert len(incident_lines) > 1
    assert all(row.fullmatch(line) for line in incident_lines[1:])
    keys = [tuple(line.split(",")[:2]) for line in incident_lines[1:]]
    assert keys == sorted(keys)

    daily_lines = daily.read_text().splitlines()
    assert daily_lines[0] == "store_id,date,uptime_hours,downtime_hours"
    assert all(
        re.fullmatch(r"[^,]+,\d{4}-\d\d-\d\d,\d+\.\d\d,\d+\.\d\d", line) for line in daily_lines[1:]
    )
    keys = [tuple(line.split(",")[:2]) for line in daily_lines[1:]]
    assert keys == sorted(keys)
    stores = {line.split(",")[0] for line in out.read_text().splitlines()[1:]}
    assert {store for store, _ in keys} == stores


def test_report_with_only_the_daily_file_and_the_report_on_stdout(
    data: Path, tmp_path: Path
) -> None:
    daily = tmp_path / "daily.csv"
    result = runner.invoke(
        app,
        ["report", "--data", str(data), "--as-of", "2023-01-24T12:00:00Z", "--daily", str(daily)],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == _expected(data, datetime(2023, 1, 24, 12, tzinfo=UTC))
    assert daily.read_text().startswith("store_id,date,uptime_hours,downtime_hours\n")


def test_report_output_files_must_differ_and_be_writable(data: Path, tmp_path: Path) -> None:
    same = tmp_path / "same.csv"
    twice = runner.invoke(
        app, ["report", "--data", str(data), "-o", str(same), "--incidents", str(same)]
    )
    assert twice.exit_code == 2
    assert "--output, --incidents and --daily must name different files" in twice.stderr
    assert not same.exists()
    nowhere = tmp_path / "missing" / "daily.csv"
    unwritable = runner.invoke(app, ["report", "--data", str(data), "--daily", str(nowhere)])
    assert unwritable.exit_code == 2
    assert unwritable.stderr.strip().splitlines() == [
        f"error: {nowhere}: no such folder {nowhere.parent}"
    ]
    assert "Traceback" not in unwritable.output
    folder = tmp_path / "a-folder.csv"
    folder.mkdir()
    not_a_file = runner.invoke(app, ["report", "--data", str(data), "--incidents", str(folder)])
    assert not_a_file.exit_code == 2
    assert f"error: {folder}: cannot write: Is a directory" in not_a_file.stderr
    assert "Traceback" not in not_a_file.output


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


def test_ingest_of_a_bad_file_stores_nothing(
    data: Path, embedded_database: Path, tmp_path: Path
) -> None:
    hours = tmp_path / "menu_hours.csv"
    hours.write_text("store_id,dayOfWeek,start_time_local,end_time_local\n1,9,09:00,17:00\n")
    result = runner.invoke(app, ["ingest", "--data", str(data), "--hours", str(hours)])
    assert result.exit_code == 2
    assert "menu_hours.csv, line 2, column 'dayOfWeek'" in result.stderr
    # Nothing was written, not even the valid polls file loaded before it: one transaction.
    assert _count(embedded_database, "polls") == 0
    assert _count(embedded_database, "stores") == 0


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
