"""Realistic synthetic input files (polls, business hours, time zones), vectorised and
reproducible: the same arguments write the same bytes."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import polars as pl

from store_monitor.frames import HOURS_FILE, POLLS_FILE, TIMEZONES_FILE

DEFAULT_END: Final = datetime(2023, 1, 25, 18, 0, tzinfo=UTC)
"""Polls end just before this instant unless `end` is given: outputs never depend on the clock."""


UNKNOWN_TIMEZONE: Final = "Mars/Olympus_Mons"

# Stores whose polls are built and written together: bounds memory and paces the progress callback.
_CHUNK_STORES: Final = 2_000
_POLL_PERIOD_US: Final = 3_600_000_000
_MINUTE_US: Final = 60_000_000

# Features are dealt round-robin over a random permutation of the stores rather than drawn
# independently, so that even a 20-store data set contains every kind of store.
_HOURS_SLOTS: Final = (
    ("regular",) * 9 + ("overnight",) * 3 + ("split",) * 3 + ("always",) * 2 + ("none",) * 3
)
_ZONE_SLOTS: Final[Sequence[str | None]] = (
    *("America/New_York",) * 6,
    *("America/Chicago",) * 2,
    *("America/Los_Angeles",) * 3,
    "America/Denver",
    "America/Phoenix",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Asia/Tokyo",
    None,  # no timezone row: the store falls back to America/Chicago
    None,
)
# A store's reliability class decides how often and how long it goes down.
_RELIABILITY_SLOTS: Final = ("steady",) * 14 + ("flaky",) * 5 + ("troubled",)

# splitmix64 (Steele, Lea & Flood 2014) as a counter-based generator in Polars' wrapping UInt64
# arithmetic: every draw is a pure function of (seed, stream, index), so the files depend on
# neither thread count nor any library's RNG implementation (and numpy isn't needed).
_GOLDEN: Final = 0x9E3779B97F4A7C15
_MIX1: Final = 0xBF58476D1CE4E5B9
_MIX2: Final = 0x94D049BB133111EB
_U64: Final = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class GeneratedFiles:
    store_status: Path
    menu_hours: Path
    timezones: Path
    stores: int
    polls: int
    """Rows written to store_status.csv."""


def generate(
    out_dir: Path,
    *,
    stores: int,
    days: int,
    seed: int,
    end: datetime | None = None,
    store_id_prefix: str = "",
    progress: Callable[[int], None] | None = None,
) -> GeneratedFiles:
    """Write store_status.csv, menu_hours.csv and timezones.csv into `out_dir`.

    Polls cover `[end - days, end)`, roughly hourly per store. `progress`, if given, is
    called with the number of stores whose polls have been written so far (cumulative,
    ending at `stores`), once per chunk of stores. Store ids are 19-digit numbers, like the
    real ones, after `store_id_prefix`.
    """
    if stores < 1 or days < 1:
        raise ValueError("stores and days must be at least 1")
    end = DEFAULT_END if end is None else end
    if end.tzinfo is None:
        raise ValueError("end must be timezone-aware")
    end_us = _epoch_us(end)
    out_dir.mkdir(parents=True, exist_ok=True)

    profile = _store_profile(stores, seed, store_id_prefix)
    _business_hours(profile, seed).write_csv(out_dir / HOURS_FILE)
    _timezones(profile).write_csv(out_dir / TIMEZONES_FILE)

    polls_path = out_dir / POLLS_FILE
    written = 0
    with polls_path.open("wb") as out:
        out.write(b"store_id,status,timestamp_utc\n")
        for first in range(0, stores, _CHUNK_STORES):
            chunk = profile.slice(first, _CHUNK_STORES)
            polls = _polls(chunk, seed=seed, days=days, end_us=end_us)
            polls.write_csv(out, include_header=False)
            written += polls.height
            if progress is not None:
                progress(first + chunk.height)

    return GeneratedFiles(
        store_status=polls_path,
        menu_hours=out_dir / HOURS_FILE,
        timezones=out_dir / TIMEZONES_FILE,
        stores=stores,
        polls=written,
    )


def _epoch_us(instant: datetime) -> int:
    return (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _key(seed: int, stream: str) -> int:
    # Streams are named so adding one never shifts the others' numbers.
    z = seed & _U64
    for byte in stream.encode():
        z = _mix_int((z * 131 + byte) & _U64)
    return z


def _mix_int(z: int) -> int:
    z = (z + _GOLDEN) & _U64
    z = ((z ^ (z >> 30)) * _MIX1) & _U64
    z = ((z ^ (z >> 27)) * _MIX2) & _U64
    return z ^ (z >> 31)


def _bits(index: pl.Series, *, seed: int, stream: str) -> pl.Series:
    """64 random bits per element of `index` (a UInt64 counter)."""
    z = index.cast(pl.UInt64) * _u64(_GOLDEN) + _u64(_key(seed, stream))
    z = (z ^ (z // (1 << 30))) * _u64(_MIX1)
    z = (z ^ (z // (1 << 27))) * _u64(_MIX2)
    return z ^ (z // (1 << 31))


def _u64(value: int) -> pl.Series:
    return pl.Series([value], dtype=pl.UInt64)


def _uniform(index: pl.Series, *, seed: int, stream: str) -> pl.Series:
    """Floats in [0, 1): the top 53 bits, exactly representable, so no platform rounding."""
    return (_bits(index, seed=seed, stream=stream) // (1 << 11)).cast(pl.Float64) * 2.0**-53


def _below(index: pl.Series, n: int, *, seed: int, stream: str) -> pl.Series:
    """Integers in [0, n)."""
    return (_uniform(index, seed=seed, stream=stream) * n).floor().cast(pl.Int64)


def _dealt(slots: Sequence[str | None], index: pl.Series, *, seed: int, stream: str) -> pl.Series:
    rank = _bits(index, seed=seed, stream=stream).rank("ordinal") - 1
    return pl.Series(slots, dtype=pl.String).gather(rank % len(slots))


def _store_profile(stores: int, seed: int, store_id_prefix: str) -> pl.DataFrame:
    idx = pl.Series("idx", range(stores), dtype=pl.UInt64)
    zone = _dealt(_ZONE_SLOTS, idx, seed=seed, stream="zone")
    if stores >= 20:
        # Exactly one store with a zone name no tz database knows.
        zone_rank = _bits(idx, seed=seed, stream="zone").rank("ordinal")
        zone = pl.select(
            pl.when(zone_rank == 1).then(pl.lit(UNKNOWN_TIMEZONE)).otherwise(zone)
        ).to_series()
    return pl.DataFrame(
        {
            "idx": idx,
            "store_id": store_id_prefix + _store_ids(idx, seed),
            "hours": _dealt(_HOURS_SLOTS, idx, seed=seed, stream="hours"),
            "timezone_str": zone,
            "reliability": _dealt(_RELIABILITY_SLOTS, idx, seed=seed, stream="reliability"),
        }
    )


def _store_ids(idx: pl.Series, seed: int) -> pl.Series:
    """Distinct 19-digit ids (10**18 .. 10**19 - 1), like the real ones."""
    span = 9 * 10**18
    attempt = 0
    while True:
        ids = _bits(idx, seed=seed, stream=f"store_id{attempt}") % span + 10**18
        if ids.n_unique() == ids.len():
            return ids.cast(pl.String).alias("store_id")
        attempt += 1  # a collision among 19-digit draws: practically never


def _business_hours(profile: pl.DataFrame, seed: int) -> pl.DataFrame:
    """One row per (store, open day, shift); minutes since local midnight, then formatted."""
    idx = profile["idx"]

    def quarter(stream: str, first_min: int, last_min: int) -> pl.Series:
        steps = (last_min - first_min) // 15 + 1
        return _below(idx, steps, seed=seed, stream=stream) * 15 + first_min

    stores = profile.select("store_id", "hours").with_columns(
        regular_open=quarter("regular_open", 6 * 60, 11 * 60),
        regular_close=quarter("regular_close", 17 * 60, 23 * 60),
        night_open=quarter("night_open", 16 * 60, 22 * 60),
        night_close=quarter("night_close", 0, 3 * 60),
        lunch_open=quarter("lunch_open", 10 * 60 + 30, 12 * 60),
        lunch_close=quarter("lunch_close", 14 * 60, 15 * 60 + 30),
        dinner_open=quarter("dinner_open", 17 * 60, 18 * 60),
        dinner_close=quarter("dinner_close", 21 * 60, 23 * 60),
        # About half the stores with hours close one weekday, a tenth close two.
        closed_a=pl.when(_uniform(idx, seed=seed, stream="closed_a") < 0.5)
        .then(_below(idx, 7, seed=seed, stream="closed_a_day"))
        .otherwise(-1),
        closed_b=pl.when(_uniform(idx, seed=seed, stream="closed_b") < 0.1)
        .then(_below(idx, 7, seed=seed, stream="closed_b_day"))
        .otherwise(-1),
    )
    days = pl.DataFrame({"day": pl.Series(range(7), dtype=pl.Int64)})
    rows = stores.filter(pl.col("hours") != "none").join(days, how="cross")
    hours = pl.col("hours")
    open_day = (pl.col("day") != pl.col("closed_a")) & (pl.col("day") != pl.col("closed_b"))
    weekend_late = pl.col("day").is_in([4, 5])  # Friday and Saturday nights run an hour longer
    first = rows.select(
        "store_id",
        "day",
        start=pl.when(hours == "regular")
        .then(pl.col("regular_open"))
        .when(hours == "overnight")
        .then(pl.col("night_open"))
        .when(hours == "split")
        .then(pl.col("lunch_open"))
        .otherwise(0),
        # -1 is written as 23:59:59, the real data's way of saying "until midnight".
        end=pl.when(hours == "regular")
        .then(
            pl.when(weekend_late)
            .then(pl.min_horizontal(pl.col("regular_close") + 60, 23 * 60 + 45))
            .otherwise(pl.col("regular_close"))
        )
        .when(hours == "overnight")
        .then(pl.col("night_close") + pl.when(weekend_late).then(60).otherwise(0))
        .when(hours == "split")
        .then(pl.col("lunch_close"))
        .otherwise(-1),
        keep=(hours == "always") | open_day,
    )
    second = rows.filter(hours == "split").select(
        "store_id",
        "day",
        start=pl.col("dinner_open"),
        end=pl.col("dinner_close"),
        keep=open_day,
    )
    return _hours_frame(
        pl.concat([first, second])
        .filter("keep")
        .join(profile.select("store_id", "idx"), on="store_id")
        .sort("idx", "day", "start")
    )


def _hours_frame(rows: pl.DataFrame) -> pl.DataFrame:
    if rows.height == 0:
        return pl.DataFrame(
            schema={
                "store_id": pl.String,
                "dayOfWeek": pl.String,
                "start_time_local": pl.String,
                "end_time_local": pl.String,
            }
        )

    def clock(minutes: pl.Expr) -> pl.Expr:
        return (
            pl.when(minutes < 0)
            .then(pl.lit("23:59:59"))
            .otherwise(
                pl.format(
                    "{}:{}:00",
                    (minutes // 60).cast(pl.String).str.zfill(2),
                    (minutes % 60).cast(pl.String).str.zfill(2),
                )
            )
        )

    return rows.select(
        "store_id",
        dayOfWeek=pl.col("day").cast(pl.String),
        start_time_local=clock(pl.col("start")),
        end_time_local=clock(pl.col("end")),
    )


def _timezones(profile: pl.DataFrame) -> pl.DataFrame:
    return profile.filter(pl.col("timezone_str").is_not_null()).select("store_id", "timezone_str")


def _polls(chunk: pl.DataFrame, *, seed: int, days: int, end_us: int) -> pl.DataFrame:
    per_store = days * 24
    store_idx = chunk["idx"]

    # Up to three outages per store, each a run of consecutive inactive polls; how likely and
    # how long depends on the store's reliability class.
    outage_p = (
        pl.when(pl.col("reliability") == "steady")
        .then(0.15)
        .when(pl.col("reliability") == "flaky")
        .then(0.6)
        .otherwise(0.9)
    )
    outage_max = (
        pl.when(pl.col("reliability") == "troubled").then(max(per_store // 3, 2)).otherwise(8)
    )
    stores = chunk.select(
        "idx",
        "store_id",
        phase_us=(_uniform(store_idx, seed=seed, stream="phase") * _POLL_PERIOD_US).cast(pl.Int64),
        miss_p=_uniform(store_idx, seed=seed, stream="miss_rate") * 0.12,
        # One longer silence (the poller or the store's link was down) for about a third of stores.
        gap_start=pl.when(_uniform(store_idx, seed=seed, stream="gap") < 0.35)
        .then(_below(store_idx, per_store, seed=seed, stream="gap_start"))
        .otherwise(-1),
        gap_len=_below(store_idx, 10, seed=seed, stream="gap_len") + 3,
        **{
            f"out{j}_start": pl.when(_uniform(store_idx, seed=seed, stream=f"out{j}") < outage_p)
            .then(_below(store_idx, per_store, seed=seed, stream=f"out{j}_start"))
            .otherwise(-(10**9))
            for j in range(3)
        },
        **{
            f"out{j}_len": (
                _uniform(store_idx, seed=seed, stream=f"out{j}_len").pow(2) * outage_max
            ).cast(pl.Int64)
            + 1
            for j in range(3)
        },
    )

    k = pl.Series("k", range(per_store), dtype=pl.UInt64)
    grid = stores.join(pl.DataFrame(k), how="cross")
    # A global poll number keys the per-poll draws, so chunking doesn't change them.
    poll_no = grid["idx"] * per_store + grid["k"]
    kk = pl.col("k").cast(pl.Int64)
    in_outage = pl.any_horizontal(
        (kk >= pl.col(f"out{j}_start")) & (kk < pl.col(f"out{j}_start") + pl.col(f"out{j}_len"))
        for j in range(3)
    )
    start_us = end_us - days * 24 * _POLL_PERIOD_US
    polls = (
        grid.with_columns(
            jitter_us=(_uniform(poll_no, seed=seed, stream="jitter") * 2 - 1) * (4 * _MINUTE_US),
            missed=_uniform(poll_no, seed=seed, stream="missed"),
            blip=_uniform(poll_no, seed=seed, stream="blip") < 0.01,
            order=_bits(poll_no, seed=seed, stream="order"),
        )
        .with_columns(
            t_us=start_us
            + pl.col("phase_us")
            + kk * _POLL_PERIOD_US
            + pl.col("jitter_us").cast(pl.Int64),
            inactive=in_outage | pl.col("blip"),
            in_gap=(kk >= pl.col("gap_start")) & (kk < pl.col("gap_start") + pl.col("gap_len")),
        )
        .filter(
            (pl.col("missed") >= pl.col("miss_p")) & ~pl.col("in_gap") & (pl.col("t_us") < end_us)
        )
        # The real export is not ordered by store or time; neither are we (within a chunk).
        .sort("order", maintain_order=True)
    )
    return polls.select(
        "store_id",
        status=pl.when("inactive").then(pl.lit("inactive")).otherwise(pl.lit("active")),
        timestamp_utc=pl.from_epoch("t_us", time_unit="us").dt.strftime(
            "%Y-%m-%d %H:%M:%S%.6f UTC"
        ),
    )
