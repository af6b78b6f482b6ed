"""Local wall-clock times → UTC instants, by the contract's rule for DST transitions.

A local time means the first instant at which the store's clock reads that time or later:
when clocks go back, its first occurrence; when clocks jump forward over it, the moment of the jump.
"""

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

import polars as pl

from store_monitor.frames import UTC_INSTANT

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us(instant: datetime) -> int:
    """Microseconds since the Unix epoch of a time-zone-aware instant."""
    return (instant - _EPOCH) // timedelta(microseconds=1)


@lru_cache(maxsize=1)
def _iana_names() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=1024)
def computable_timezone(name: str) -> bool:
    """Whether the engine can compute in the zone `name`: an IANA name that both Python's
    zoneinfo (DST jumps) and Polars (every conversion) know. Polars refuses some names that
    zoneinfo lists (e.g. `Factory`, `localtime`): such a name is unknown, as a misspelt one."""
    if name not in _iana_names():
        return False
    try:
        pl.select(pl.lit(0, pl.Datetime("us")).dt.replace_time_zone(name))
    except pl.exceptions.PolarsError:
        return False
    return True


def computable_timezones(names: pl.Series) -> pl.Series:
    """The distinct `names` the engine can compute in (see `computable_timezone`)."""
    return pl.Series(
        [name for name in names.drop_nulls().unique() if computable_timezone(name)], dtype=pl.String
    )


def local_to_utc(local: pl.Expr, timezone: str) -> pl.Expr:
    """Convert naive local datetimes of one zone to UTC instants.

    Ambiguous times resolve to their first occurrence by Polars itself; non-existent times come
    back null and are filled by `fill_jumps`, which needs the column materialised.
    """
    return (
        local.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
        .cast(UTC_INSTANT)
    )


def zoned_to_utc(frame: pl.DataFrame, columns: dict[str, str]) -> pl.DataFrame:
    """`frame` with, for each `output: local` of `columns`, the naive local datetimes of column
    `local` as UTC instants in a new column `output`, each row by the zone in its `timezone`.

    A time zone belongs to the column type: one branch per zone, all in one query. Local times
    skipped by a forward jump (a few days a year, so usually none) are filled after it.
    """
    by_zone = frame.partition_by("timezone", as_dict=True)
    if not by_zone:
        return frame.with_columns(pl.lit(None, UTC_INSTANT).alias(name) for name in columns)
    converted = pl.concat(
        [
            group.lazy().with_columns(
                local_to_utc(pl.col(local), timezone).alias(output)
                for output, local in columns.items()
            )
            for (timezone,), group in by_zone.items()
        ]
    ).collect()
    if not any(converted[output].has_nulls() for output in columns):
        return converted
    return pl.concat(
        group.with_columns(
            fill_jumps(group[local], group[output], timezone) for output, local in columns.items()
        )
        for (timezone,), group in converted.partition_by("timezone", as_dict=True).items()
    )


def fill_jumps(local: pl.Series, utc: pl.Series, timezone: str) -> pl.Series:
    """Fill the nulls `local_to_utc` left for local times skipped by a forward jump.

    Such times are rare (a few per zone a year), so each distinct one is resolved in Python.
    """
    missing = local.filter(utc.is_null() & local.is_not_null()).unique()
    if missing.is_empty():
        return utc
    zone = ZoneInfo(timezone)
    jumps = pl.DataFrame(
        {
            "local": missing,
            "jump": pl.Series([_jump_instant(t, zone) for t in missing], dtype=UTC_INSTANT),
        }
    )
    filled = (
        pl.DataFrame({"local": local, "utc": utc})
        .join(jumps, on="local", how="left", maintain_order="left")
        .select(pl.coalesce("utc", "jump"))
        .to_series()
    )
    return filled.rename(utc.name)


def _jump_instant(local: datetime, zone: ZoneInfo) -> datetime:
    """The instant the clock jumps over `local`, a wall time that does not exist in `zone`."""
    # PEP 495: inside a gap fold=0 applies the offset before the jump (an instant after it) and
    # fold=1 the offset after (an instant before it); the jump lies between, on a whole second.
    before = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    after = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    lo = int(before.timestamp()) - 1
    hi = int(after.timestamp()) + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        reading = datetime.fromtimestamp(mid, UTC).astimezone(zone).replace(tzinfo=None)
        if reading >= local:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)
