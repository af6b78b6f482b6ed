"""The synthetic data set: readable by our own readers, reproducible, and as varied as promised."""

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import polars as pl
import pytest

from store_monitor import synthetic
from store_monitor.frames import POLLS
from store_monitor.sources import read_business_hours, read_polls, read_timezones
from store_monitor.synthetic import GeneratedFiles, generate


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> GeneratedFiles:
    return generate(tmp_path_factory.mktemp("synthetic"), stores=30, days=2, seed=7)


def test_files_and_headers(files: GeneratedFiles) -> None:
    assert files.store_status.name == "store_status.csv"
    assert files.menu_hours.name == "menu_hours.csv"
    assert files.timezones.name == "timezones.csv"
    assert files.store_status.read_text().startswith("store_id,status,timestamp_utc\n")
    assert files.menu_hours.read_text().startswith(
        "store_id,dayOfWeek,start_time_local,end_time_local\n"
    )
    assert files.timezones.read_text().startswith("store_id,timezone_str\n")


def test_polls_round_trip_through_the_reader(files: GeneratedFiles) -> None:
    polls = read_polls(files.store_status)
    assert polls.schema == POLLS
    assert polls.height == files.polls
    assert polls["store_id"].n_unique() == files.stores == 30
    assert polls["store_id"].str.contains(r"^[1-9]\d{18}$").all()
    # The real export's timestamp format, microseconds always written.
    raw = pl.read_csv(files.store_status, infer_schema=False)["timestamp_utc"]
    assert raw.str.contains(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} UTC$").all()


def test_polls_are_roughly_hourly_mostly_active_with_outages(files: GeneratedFiles) -> None:
    polls = read_polls(files.store_status)
    end = synthetic.DEFAULT_END
    assert polls["timestamp_utc"].max() < end  # type: ignore[operator]
    assert polls["timestamp_utc"].min() >= end - timedelta(days=2, minutes=5)  # type: ignore[operator]
    per_store = polls.group_by("store_id").len()["len"]
    assert per_store.max() <= 48  # type: ignore[operator]
    assert per_store.mean() > 36  # type: ignore[operator]
    gaps = (
        polls.sort("store_id", "timestamp_utc")
        .select(gap=pl.col("timestamp_utc").diff().over("store_id"))
        .drop_nulls()["gap"]
    )
    assert timedelta(minutes=50) < gaps.median() < timedelta(minutes=70)  # type: ignore[operator]
    assert gaps.max() >= timedelta(hours=3)  # type: ignore[operator]  # a missed stretch
    inactive = (polls["status"] == "inactive").mean()
    assert 0.005 < inactive < 0.3  # type: ignore[operator]


def test_business_hours_are_varied(files: GeneratedFiles) -> None:
    hours = read_business_hours(files.menu_hours)
    polls = read_polls(files.store_status)
    stores = set(polls["store_id"])
    assert set(hours["store_id"]) < stores  # some stores have no hours rows at all
    start, end = pl.col("start_time_local"), pl.col("end_time_local")
    assert hours.filter((end < start) & (end > time(0))).height > 0  # overnight, e.g. 18:00-02:00
    always = hours.filter((start == time(0)) & (end == time(23, 59, 59)))
    assert always.group_by("store_id").len()["len"].to_list().count(7) >= 1  # 24x7 stores
    per_day = hours.group_by("store_id", "day_of_week").len()
    assert per_day["len"].max() == 2  # split shifts
    days_open = hours.group_by("store_id").agg(pl.col("day_of_week").n_unique())
    assert (days_open["day_of_week"] < 7).any()  # closed days


def test_timezones_are_varied(files: GeneratedFiles) -> None:
    zones = read_timezones(files.timezones)
    stores = set(read_polls(files.store_status)["store_id"])
    assert set(zones["store_id"]) < stores  # some stores have no zone row
    assert zones["store_id"].is_unique().all()
    names = set(zones["timezone_str"])
    assert {"America/New_York", "America/Los_Angeles"} <= names
    assert any(not name.startswith("America/") for name in names - {synthetic.UNKNOWN_TIMEZONE})
    assert (zones["timezone_str"] == synthetic.UNKNOWN_TIMEZONE).sum() == 1


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", stores=25, days=1, seed=3)
    again = generate(tmp_path / "b", stores=25, days=1, seed=3)
    other = generate(tmp_path / "c", stores=25, days=1, seed=4)
    for name in ("store_status", "menu_hours", "timezones"):
        assert getattr(first, name).read_bytes() == getattr(again, name).read_bytes()
        assert getattr(first, name).read_bytes() != getattr(other, name).read_bytes()


def test_end_moves_the_polls(tmp_path: Path) -> None:
    end = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
    files = generate(tmp_path, stores=3, days=1, seed=1, end=end)
    stamps = read_polls(files.store_status)["timestamp_utc"]
    assert end - timedelta(days=1, minutes=5) <= stamps.min() < stamps.max() < end  # type: ignore[operator]


def test_progress_counts_stores_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthetic, "_CHUNK_STORES", 10)
    seen: list[int] = []
    files = generate(tmp_path, stores=25, days=1, seed=1, progress=seen.append)
    assert seen == [10, 20, 25]
    assert read_polls(files.store_status)["store_id"].n_unique() == 25


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stores": 0, "days": 1},
        {"stores": 1, "days": 0},
        {"stores": 1, "days": 1, "end": datetime(2023, 1, 1)},  # naive
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"at least 1|timezone-aware"):
        generate(tmp_path, seed=1, **kwargs)  # type: ignore[arg-type]
