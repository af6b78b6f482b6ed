"""Every store's business hours and time zone, read at once and kept by a runner while the
database's `store_hours_version` is unchanged: hourly live evaluations then read only polls."""

from dataclasses import dataclass
from typing import Final

import polars as pl
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from store_monitor.db.models import StoreHoursVersion
from store_monitor.db.postgres import big_endian, hours_records, repeated, texts
from store_monitor.frames import TIMEZONES


@dataclass(frozen=True, kw_only=True)
class StoreHours:
    version: int | None
    """The `store_hours_version` they were read at; None without its row (never current)."""
    business_hours: pl.DataFrame
    """Schema BUSINESS_HOURS, of every store, sorted by store_id."""
    timezones: pl.DataFrame
    """Schema TIMEZONES, of every store with a zone, sorted by store_id."""


class StoreHoursCache:
    """The hours a runner read last. Owned by one runner (never shared between processes); the
    version check makes a stale copy impossible to use, whoever changed the hours."""

    def __init__(self) -> None:
        self.latest: StoreHours | None = None


# Packed as `report_inputs` packs its statement's values: one row, a few large values.
_ALL_HOURS: Final = sa.text("""
SELECT
    (SELECT version FROM store_hours_version) AS version,
    (SELECT string_agg(convert_to(store_id, 'UTF8'), '\\x00' ORDER BY store_id)
     FROM (SELECT DISTINCT store_id FROM business_hours) AS s) AS hours_store_ids,
    (SELECT string_agg(int4send(n), '' ORDER BY store_id)
     FROM (SELECT store_id, CAST(count(*) AS int) AS n FROM business_hours GROUP BY store_id) AS c)
        AS counts,
    (SELECT string_agg(
         int8send(day_of_week::bigint) || time_send(start_time_local) || time_send(end_time_local),
         '' ORDER BY store_id, day_of_week, start_time_local, end_time_local
     ) FROM business_hours) AS hours,
    (SELECT string_agg(convert_to(store_id, 'UTF8'), '\\x00' ORDER BY store_id) FROM timezones)
        AS zone_store_ids,
    (SELECT string_agg(convert_to(timezone_str, 'UTF8'), '\\x00' ORDER BY store_id)
     FROM timezones) AS zones
""")


async def current_hours(connection: AsyncConnection, cache: StoreHoursCache) -> StoreHours:
    """The hours and zones as the connection's transaction sees them: the cached ones if their
    version is still the current one there, else read (and cached)."""
    version = await connection.scalar(sa.select(StoreHoursVersion.version))
    cached = cache.latest
    if cached is not None and version is not None and cached.version == version:
        return cached
    packed = (await connection.execute(_ALL_HOURS)).one()._mapping
    counts = big_endian(packed["counts"], pl.Int32())
    read = StoreHours(
        version=packed["version"],
        business_hours=hours_records(
            repeated(texts(packed["hours_store_ids"]), counts), packed["hours"]
        ),
        timezones=pl.DataFrame(
            {"store_id": texts(packed["zone_store_ids"]), "timezone_str": texts(packed["zones"])},
            schema=TIMEZONES,
        ),
    )
    cache.latest = read
    return read
