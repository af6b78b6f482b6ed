"""The report-inputs statement's one packed row (`db/report_inputs.py`) decoded into frames."""

from dataclasses import dataclass
from datetime import datetime

import polars as pl
import sqlalchemy as sa

from store_monitor.db.postgres import (
    POSTGRES_EPOCH_US,
    big_endian,
    hours_records,
    repeated,
    repeated_positions,
    texts,
)
from store_monitor.frames import POLLS, STATUS, TIMEZONES


@dataclass(frozen=True, kw_only=True)
class Part:
    """One part's inputs, as `ReportInputs` but for the polls' stores: `store_code`, the
    position of the poll's store in `store_ids` (see `report_inputs`)."""

    store_ids: pl.Series
    polls: pl.DataFrame
    business_hours: pl.DataFrame
    timezones: pl.DataFrame
    now: datetime | None
    ignored_polls: int


def unpack_part(packed: sa.RowMapping) -> Part:
    store_ids = texts(packed["store_ids"])
    # Per store: (active polls, inactive polls, business-hours rows).
    counts = big_endian(packed["counts"], pl.Int32())
    before_polls = pl.DataFrame(
        {
            "store_code": texts(packed["before_store_ids"])
            .cast(pl.Enum(store_ids))
            .to_physical()
            .cast(pl.UInt32),
            "timestamp_utc": _instants(big_endian(packed["before_at"], pl.Int64())),
            "status": _statuses(big_endian(packed["before_inactive"], pl.UInt8())),
        }
    )
    week_polls = [
        pl.DataFrame(
            {
                "store_code": repeated_positions(counts.gather_every(3, offset)),
                "timestamp_utc": _instants(big_endian(packed[status], pl.Int64())),
            }
        ).with_columns(status=pl.lit(status, dtype=STATUS))
        for offset, status in ((0, "active"), (1, "inactive"))
    ]
    return Part(
        store_ids=store_ids,
        polls=pl.concat([before_polls, *week_polls]),
        business_hours=hours_records(
            repeated(store_ids, counts.gather_every(3, 2)), packed["hours"]
        ),
        timezones=pl.DataFrame(
            {"store_id": texts(packed["zone_store_ids"]), "timezone_str": texts(packed["zones"])},
            schema=TIMEZONES,
        ),
        now=packed["now"],
        ignored_polls=packed["ignored_polls"],
    )


def _instants(postgres_us: pl.Series) -> pl.Series:
    return (postgres_us + POSTGRES_EPOCH_US).cast(POLLS["timestamp_utc"])


def _statuses(inactive: pl.Series) -> pl.Series:
    return (
        pl.select(
            pl.when(inactive.cast(pl.Boolean)).then(pl.lit("inactive")).otherwise(pl.lit("active"))
        )
        .to_series()
        .cast(STATUS)
    )
