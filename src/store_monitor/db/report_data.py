"""Reports in the database: engine inputs out as frames, report rows in, the CSV out in chunks."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import polars as pl
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import BusinessHours, Poll, ReportRow, Timezone
from store_monitor.db.postgres import copy_in, copy_out
from store_monitor.engine.csv import report_csv_bytes
from store_monitor.engine.schema import BUSINESS_HOURS, POLLS, REPORT, STATUS, TIMEZONES

# The engine looks back one week from `now`; a poll before that matters only as the status a
# store has when the week starts (see `load_report_inputs`).
_LOOK_BACK: Final = timedelta(weeks=1)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# How SQLAlchemy writes instants and times into SQLite's text columns; both sort as text.
_SQLITE_INSTANT: Final = "%Y-%m-%d %H:%M:%S%.f"
_SQLITE_TIME: Final = "%H:%M:%S%.f"
_TEXT_POLLS: Final = {"store_id": pl.String(), "timestamp_utc": pl.String(), "status": pl.String()}
_TEXT_HOURS: Final = {
    "store_id": pl.String(),
    "day_of_week": pl.Int8(),
    "start_time_local": pl.String(),
    "end_time_local": pl.String(),
}


@dataclass(frozen=True, kw_only=True)
class ReportInputs:
    """What `compute_report` needs for a report at `now`, read from one snapshot of the data."""

    polls: pl.DataFrame
    """Schema POLLS: the polls in `[now - 1 week, now]`, plus each store's last poll before
    that week (inactive if a store has an active and an inactive poll at that instant)."""
    business_hours: pl.DataFrame
    """Schema BUSINESS_HOURS, of the stores in `polls` only."""
    timezones: pl.DataFrame
    """Schema TIMEZONES, of the stores in `polls` only."""
    now: datetime | None
    """`as_of`, or else the latest poll; None when there are no polls and no `as_of`."""
    ignored_polls: int
    """Polls after `now`: not loaded, so the engine cannot count them itself."""


async def load_report_inputs(session: AsyncSession, *, as_of: datetime | None) -> ReportInputs:
    """The engine's inputs for a report at `as_of` (None: at the latest poll).

    `compute_report(inputs.polls, inputs.business_hours, inputs.timezones, as_of=inputs.now)`
    gives the same rows as on the full tables; take `ignored_polls` from here, not from it.
    The read is one consistent snapshot: on Postgres a single COPY statement, whatever the
    transaction's isolation level; on SQLite the session's transaction (see db/session.py).
    """
    if as_of is not None and as_of.tzinfo is None:
        raise ValueError("as_of must be time-zone aware")
    if session.get_bind().dialect.name == "postgresql":
        return await _load_postgres(session, as_of)
    return await _load_sqlite(session, as_of)


# One statement, COPY'd out, so one snapshot. Its rows are a tagged union of the inputs and a
# last row of scalars, told apart by `kind`; instants come as epoch microseconds, the cheapest
# to parse. Per-store lookups go through the primary key (store_id, timestamp_utc, status),
# forced by LATERAL ... LIMIT; DESC on status puts an instant's inactive poll first. The window
# is a range scan (BRIN index or sequential). Hours and zones are small: all are read, and
# those of stores without polls dropped afterwards.
_POSTGRES_INPUTS: Final = """
WITH resolved AS MATERIALIZED (
    SELECT coalesce($1::timestamptz, (
        SELECT max(latest.timestamp_utc)
        FROM stores AS s
        CROSS JOIN LATERAL (
            SELECT p.timestamp_utc FROM polls AS p
            WHERE p.store_id = s.store_id
            ORDER BY p.timestamp_utc DESC
            LIMIT 1
        ) AS latest
    )) AS now
),
bounds AS MATERIALIZED (
    SELECT now, now - interval '7 days' AS week_start FROM resolved
),
window_polls AS (
    SELECT p.store_id, p.timestamp_utc, p.status
    FROM polls AS p, bounds
    WHERE p.timestamp_utc >= bounds.week_start AND p.timestamp_utc <= bounds.now
    UNION ALL
    SELECT s.store_id, last.timestamp_utc, last.status
    FROM stores AS s
    CROSS JOIN bounds
    CROSS JOIN LATERAL (
        SELECT p.timestamp_utc, p.status FROM polls AS p
        WHERE p.store_id = s.store_id AND p.timestamp_utc < bounds.week_start
        ORDER BY p.timestamp_utc DESC, p.status DESC
        LIMIT 1
    ) AS last
)
-- Postgres types a UNION's columns from left to right: the first branch names them all.
SELECT 0, store_id, (extract(epoch FROM timestamp_utc) * 1000000)::bigint, status,
       NULL::smallint, NULL::time, NULL::time, NULL::text, NULL::bigint
FROM window_polls
UNION ALL
SELECT 1, store_id, NULL, NULL, day_of_week, start_time_local, end_time_local, NULL, NULL
FROM business_hours
UNION ALL
SELECT 2, store_id, NULL, NULL, NULL, NULL, NULL, timezone_str, NULL
FROM timezones
UNION ALL
-- Without as_of, `now` is the latest poll: none can come after it.
SELECT 3, NULL, (extract(epoch FROM now) * 1000000)::bigint, NULL, NULL, NULL, NULL, NULL,
       CASE WHEN $1::timestamptz IS NULL THEN 0
            ELSE (SELECT count(*) FROM polls WHERE timestamp_utc > bounds.now) END
FROM bounds
"""
_POSTGRES_INPUTS_SCHEMA: Final = pl.Schema(
    {
        "kind": pl.Int8(),
        "store_id": pl.String(),
        "at_us": pl.Int64(),
        "status": STATUS,
        "day_of_week": pl.Int8(),
        "start_time_local": pl.Time(),
        "end_time_local": pl.Time(),
        "timezone_str": pl.String(),
        "ignored": pl.Int64(),
    }
)


async def _load_postgres(session: AsyncSession, as_of: datetime | None) -> ReportInputs:
    data = await copy_out(session, _POSTGRES_INPUTS, as_of)
    # A second or so of parsing for millions of polls: in a thread, off the event loop.
    return await asyncio.to_thread(_parse_postgres_inputs, data)


def _parse_postgres_inputs(data: bytes) -> ReportInputs:
    rows = pl.read_csv(data, has_header=False, schema=_POSTGRES_INPUTS_SCHEMA)
    kind = pl.col("kind")
    scalars = rows.filter(kind == 3)
    now_us: int | None = scalars["at_us"].item()
    return _inputs(
        polls=rows.filter(kind == 0).select(
            "store_id",
            pl.col("at_us").cast(POLLS["timestamp_utc"]).alias("timestamp_utc"),
            "status",
        ),
        business_hours=rows.filter(kind == 1).select(BUSINESS_HOURS.names()),
        timezones=rows.filter(kind == 2).select(TIMEZONES.names()),
        now=None if now_us is None else _EPOCH + timedelta(microseconds=now_us),
        ignored_polls=scalars["ignored"].item(),
    )


def _inputs(
    *,
    polls: pl.DataFrame,
    business_hours: pl.DataFrame,
    timezones: pl.DataFrame,
    now: datetime | None,
    ignored_polls: int,
) -> ReportInputs:
    polled = polls.select(pl.col("store_id").unique())
    return ReportInputs(
        polls=polls,
        business_hours=business_hours.join(polled, on="store_id", how="semi"),
        timezones=timezones.join(polled, on="store_id", how="semi"),
        now=now,
        ignored_polls=ignored_polls,
    )


async def _load_sqlite(session: AsyncSession, as_of: datetime | None) -> ReportInputs:
    # The same reads as on Postgres, in several statements of the session's transaction.
    # Instants and times are fetched as their stored text, parsed by Polars. The last poll
    # before the week is found by a window function: SQLite has no LATERAL.
    now = as_of
    if now is None:
        now = await session.scalar(sa.select(sa.func.max(Poll.timestamp_utc)))
    if now is None:
        return ReportInputs(
            polls=POLLS.to_frame(),
            business_hours=BUSINESS_HOURS.to_frame(),
            timezones=TIMEZONES.to_frame(),
            now=None,
            ignored_polls=0,
        )
    week_start = now - _LOOK_BACK
    ignored = await session.scalar(
        sa.select(sa.func.count()).select_from(Poll).where(Poll.timestamp_utc > now)
    )

    stored = sa.type_coerce(Poll.timestamp_utc, sa.String).label("timestamp_utc")
    in_window = sa.select(Poll.store_id, stored, Poll.status).where(
        Poll.timestamp_utc >= week_start, Poll.timestamp_utc <= now
    )
    latest_first = sa.func.row_number().over(
        partition_by=Poll.store_id, order_by=(Poll.timestamp_utc.desc(), Poll.status.desc())
    )
    before = (
        sa.select(Poll.store_id, stored, Poll.status, latest_first.label("rank"))
        .where(Poll.timestamp_utc < week_start)
        .subquery()
    )
    last_before = sa.select(before.c.store_id, before.c.timestamp_utc, before.c.status).where(
        before.c.rank == 1
    )
    polls = await session.execute(sa.union_all(in_window, last_before))
    poll_frame = pl.DataFrame(polls.all(), schema=_TEXT_POLLS, orient="row").select(
        "store_id",
        pl.col("timestamp_utc").str.to_datetime(_SQLITE_INSTANT, time_unit="us", time_zone="UTC"),
        pl.col("status").cast(STATUS),
    )

    hours = await session.execute(
        sa.select(
            BusinessHours.store_id,
            BusinessHours.day_of_week,
            sa.type_coerce(BusinessHours.start_time_local, sa.String),
            sa.type_coerce(BusinessHours.end_time_local, sa.String),
        )
    )
    hours_frame = pl.DataFrame(hours.all(), schema=_TEXT_HOURS, orient="row").select(
        "store_id",
        "day_of_week",
        *(
            pl.col(name).str.to_time(_SQLITE_TIME)
            for name in ("start_time_local", "end_time_local")
        ),
    )
    zones = await session.execute(sa.select(Timezone.store_id, Timezone.timezone_str))
    zone_frame = pl.DataFrame(zones.all(), schema=TIMEZONES, orient="row")
    return _inputs(
        polls=poll_frame,
        business_hours=hours_frame,
        timezones=zone_frame,
        now=now,
        ignored_polls=ignored or 0,
    )


async def replace_report_rows(
    session: AsyncSession, report_id: uuid.UUID, rows: pl.DataFrame
) -> None:
    """Make `rows` (schema REPORT) the report's rows, replacing any it had: a retried job
    leaves exactly one set. Flushes, never commits."""
    await session.execute(
        sa.delete(ReportRow)
        .where(ReportRow.report_id == report_id)
        .execution_options(synchronize_session=False)
    )
    frame = rows.select(REPORT.names())
    if session.get_bind().dialect.name == "postgresql":
        with_id = frame.select(pl.lit(str(report_id)).alias("report_id"), pl.all())
        await copy_in(session, ReportRow.__tablename__, with_id)
    elif frame.height:
        await session.execute(
            sa.insert(ReportRow),
            [{"report_id": report_id, **row} for row in frame.iter_rows(named=True)],
        )


async def report_rows_csv(
    session: AsyncSession, report_id: uuid.UUID, *, chunk_rows: int = 5000
) -> AsyncIterator[bytes]:
    """The report as CSV, in chunks of up to `chunk_rows` rows, the first with the header.

    Rows come in store_id byte order (the column's collation), a chunk at a time by keyset
    pagination on the primary key, each formatted by the CLI's writer: the chunks join into
    exactly the bytes `report_csv_bytes` gives for the whole report. A report without rows
    is just the header.
    """
    query = (
        sa.select(*(getattr(ReportRow, name) for name in REPORT.names()))
        .where(ReportRow.report_id == report_id)
        .order_by(ReportRow.store_id)
        .limit(chunk_rows)
    )
    after: str | None = None
    header = True
    while True:
        page = query if after is None else query.where(ReportRow.store_id > after)
        result = await session.execute(page)
        frame = pl.DataFrame(result.all(), schema=REPORT, orient="row")
        if frame.height or header:
            yield report_csv_bytes(frame, header=header)
        header = False
        if frame.height < chunk_rows:
            return
        after = frame["store_id"][-1]
