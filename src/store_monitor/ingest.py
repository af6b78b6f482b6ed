"""Validated input frames (from `store_monitor.sources`) into the database.

Polls are added (a re-ingested poll adds nothing); business hours and time zones replace the
rows of the stores present in the new frame. Each function is a step of the caller's
transaction: it flushes and never commits, so a load that fails part-way leaves nothing behind
once the caller rolls back.
"""

import asyncio
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import polars as pl
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import BusinessHours, Poll, Store, Timezone
from store_monitor.db.partitions import attach_poll_weeks, create_poll_weeks, partition_name
from store_monitor.db.postgres import copy_in, copy_in_binary, copy_out
from store_monitor.frames import BUSINESS_HOURS, POLLS, STATUS, TIMEZONES

# SQLite keeps instants and times as text in SQLAlchemy's format; rows written past the ORM
# must match it, or comparisons with values the ORM binds would go wrong.
_SQLITE_INSTANT: Final = "%Y-%m-%d %H:%M:%S%.6f"
_SQLITE_TIME: Final = "%H:%M:%S%.6f"
# The stored polls of some stores, each within a span of time, found on the primary key.
_STORED_POLLS: Final = """
SELECT p.store_id, (extract(epoch FROM p.timestamp_utc) * 1000000)::bigint, p.status
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS span (store_id, first, last)
CROSS JOIN LATERAL (
    SELECT p.store_id, p.timestamp_utc, p.status FROM polls AS p
    WHERE p.store_id = span.store_id AND p.timestamp_utc BETWEEN span.first AND span.last
) AS p
"""
_STORED_POLLS_SCHEMA: Final = {"store_id": pl.String(), "at_us": pl.Int64(), "status": STATUS}
# A store's row follows its latest and its first poll; the same words on both dialects (on
# SQLite the instants are fixed-width text, which sorts as they do).
_SPAN_OF_POLLS: Final = """
ON CONFLICT (store_id) DO UPDATE SET
    latest_poll_at = CASE WHEN stores.latest_poll_at IS NULL
        OR stores.latest_poll_at < excluded.latest_poll_at
        THEN excluded.latest_poll_at ELSE stores.latest_poll_at END,
    first_poll_at = CASE WHEN stores.first_poll_at IS NULL
        OR stores.first_poll_at > excluded.first_poll_at
        THEN excluded.first_poll_at ELSE stores.first_poll_at END
WHERE stores.latest_poll_at IS NULL OR stores.latest_poll_at < excluded.latest_poll_at
    OR stores.first_poll_at IS NULL OR stores.first_poll_at > excluded.first_poll_at
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestResult:
    received: int
    """Rows in the frame."""
    added: int
    """Rows stored. Polls: those not stored before and not repeated within the frame; hours
    and time zones: the rows that now stand for the frame's stores (a repeated hours row and
    all but the last time zone of a store count once)."""
    stores: int
    """Distinct stores in the frame."""


async def ingest_polls(session: AsyncSession, polls: pl.DataFrame) -> IngestResult:
    """Add polls (schema POLLS) and their stores; polls already stored are left as they are."""
    # Seconds of Polars work for millions of polls: in a thread, off the event loop.
    spans, coded = await asyncio.to_thread(_coded, _conformed(polls, POLLS))
    if coded.height == 0:
        return IngestResult(received=polls.height, added=0, stores=0)
    if session.get_bind().dialect.name == "postgresql":
        added = await _add_polls_postgres(session, coded, spans)
    else:
        added = await _add_polls_sqlite(session, coded, spans)
    return IngestResult(received=polls.height, added=added, stores=spans.height)


def _coded(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The frame's stores in text order with the span of their polls (`first`, `last`), and
    its distinct polls sorted, store ids coded."""
    stores = frame["store_id"].unique().sort()
    # Store ids coded in text order: sorting integers is four times faster than strings, and
    # Postgres' binary COPY encodes each store id once. Rows sorted as the primary key fill
    # its B-tree in order, much cheaper than at random; duplicates end up side by side.
    coded = frame.with_columns(pl.col("store_id").cast(pl.Enum(stores))).sort(POLLS.names())
    repeated = pl.all_horizontal(pl.col(name) == pl.col(name).shift(1) for name in POLLS.names())
    distinct = coded.filter(~repeated.fill_null(False))
    spans = distinct.group_by("store_id", maintain_order=True).agg(
        first=pl.col("timestamp_utc").first(), last=pl.col("timestamp_utc").last()
    )
    return spans.with_columns(pl.col("store_id").cast(pl.String)), distinct


async def _add_polls_postgres(
    session: AsyncSession, coded: pl.DataFrame, spans: pl.DataFrame
) -> int:
    # COPY cannot skip rows already stored, and INSERT ... ON CONFLICT from a COPY-filled
    # temporary table was four times slower than COPY alone. So: loads take turns on the table
    # (readers are not blocked), fetch what is stored of the new polls' stores and time
    # spans, and COPY only the rest.
    # A poll outside every partition would fail the COPY: its week's table is made first, and
    # filled before it is attached (see `create_poll_weeks`).
    weeks = await create_poll_weeks(session, await asyncio.to_thread(_weeks, coded))
    await session.execute(sa.text(f"LOCK TABLE {Poll.__tablename__} IN SHARE ROW EXCLUSIVE MODE"))
    ids, firsts, lasts = (spans[name].to_list() for name in ("store_id", "first", "last"))
    stored = await copy_out(session, _STORED_POLLS, ids, firsts, lasts)
    new = await asyncio.to_thread(_unstored, coded, stored) if stored else coded
    await session.execute(
        sa.text(
            "INSERT INTO stores (store_id, latest_poll_at, first_poll_at) SELECT * FROM unnest("
            "CAST(:ids AS text[]), CAST(:lasts AS timestamptz[]), CAST(:firsts AS timestamptz[]))"
            + _SPAN_OF_POLLS
        ),
        {"ids": ids, "lasts": lasts, "firsts": firsts},
    )
    rest = new
    if weeks:
        into_new_weeks, rest = await asyncio.to_thread(_split_by_week, new, weeks)
        for monday, week_polls in into_new_weeks.items():
            await copy_in_binary(session, partition_name(monday), week_polls)
        await attach_poll_weeks(session, weeks)
    await copy_in_binary(session, Poll.__tablename__, rest)
    return new.height


def _weeks(polls: pl.DataFrame) -> list[date]:
    """The Mondays (UTC) of the weeks the polls fall in: Polars' weeks start on Monday."""
    weeks = polls["timestamp_utc"].drop_nulls().dt.truncate("1w").dt.date().unique()
    return weeks.to_list()


def _split_by_week(
    polls: pl.DataFrame, weeks: list[date]
) -> tuple[dict[date, pl.DataFrame], pl.DataFrame]:
    """The polls of each of these weeks (Mondays), in order, and the others."""
    keyed = polls.with_columns(_week=pl.col("timestamp_utc").dt.truncate("1w").dt.date())
    in_weeks = pl.col("_week").is_in(weeks)
    parts = keyed.filter(in_weeks).partition_by("_week", as_dict=True, include_key=False)
    return (
        {key[0]: part for key, part in parts.items() if isinstance(key[0], date)},
        keyed.filter(~in_weeks.fill_null(False)).drop("_week"),
    )


def _unstored(coded: pl.DataFrame, stored_csv: bytes) -> pl.DataFrame:
    stored = pl.read_csv(stored_csv, has_header=False, schema=_STORED_POLLS_SCHEMA).select(
        pl.col("store_id").cast(coded.schema["store_id"]),
        pl.col("at_us").cast(POLLS["timestamp_utc"]).alias("timestamp_utc"),
        "status",
    )
    return coded.join(stored, on=POLLS.names(), how="anti", maintain_order="left")


async def _add_polls_sqlite(session: AsyncSession, coded: pl.DataFrame, spans: pl.DataFrame) -> int:
    connection = await session.connection()
    await connection.exec_driver_sql(
        f"INSERT INTO {Store.__tablename__} (store_id, latest_poll_at, first_poll_at) "
        "VALUES (?, ?, ?)" + _SPAN_OF_POLLS,
        spans.select(
            "store_id", *(pl.col(name).dt.strftime(_SQLITE_INSTANT) for name in ("last", "first"))
        ).rows(),
    )
    rows = coded.select(
        pl.col("store_id").cast(pl.String),
        pl.col("timestamp_utc").dt.strftime(_SQLITE_INSTANT),
        pl.col("status").cast(pl.String),
    ).rows()
    result = await connection.exec_driver_sql(
        f"INSERT INTO {Poll.__tablename__} (store_id, timestamp_utc, status) VALUES (?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        rows,
    )
    return _rowcount(result)


async def ingest_business_hours(session: AsyncSession, hours: pl.DataFrame) -> IngestResult:
    """Replace the business hours (schema BUSINESS_HOURS) of every store in `hours`.

    A store's rows are its whole week: days without a row are closed days, so rows of an earlier
    load are never merged with the new ones. Stores not in `hours` keep theirs.
    """
    frame = _conformed(hours, BUSINESS_HOURS).unique().sort(BUSINESS_HOURS.names())
    sqlite_rows = frame.with_columns(
        pl.col("start_time_local", "end_time_local").dt.strftime(_SQLITE_TIME)
    )
    stores = await _replace(session, BusinessHours.__tablename__, frame, sqlite_rows)
    return IngestResult(received=hours.height, added=frame.height, stores=stores)


async def ingest_timezones(session: AsyncSession, zones: pl.DataFrame) -> IngestResult:
    """Replace the time zone (schema TIMEZONES) of every store in `zones`; where a store has
    several rows the last one wins, as in the engine."""
    frame = _conformed(zones, TIMEZONES).unique(subset="store_id", keep="last").sort("store_id")
    stores = await _replace(session, Timezone.__tablename__, frame, frame)
    return IngestResult(received=zones.height, added=frame.height, stores=stores)


async def _replace(
    session: AsyncSession, table: str, frame: pl.DataFrame, sqlite_rows: pl.DataFrame
) -> int:
    """Delete the rows of `table` whose store is in `frame`, then insert `frame`; the number of
    stores replaced. `sqlite_rows` is `frame` as SQLite stores it."""
    stores = frame["store_id"].unique().sort()
    if session.get_bind().dialect.name == "postgresql":
        # Two loads replacing the same stores at once would each miss the other's new rows and
        # then collide on them: loads of one table take turns (readers are not blocked).
        await session.execute(sa.text(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))
        await session.execute(
            sa.text(f"DELETE FROM {table} WHERE store_id = ANY(CAST(:ids AS text[]))"),
            {"ids": stores.to_list()},
        )
        await copy_in(session, table, frame)
        return stores.len()
    # SQLite: one writer at a time anyway.
    connection = await session.connection()
    if stores.len():
        await connection.exec_driver_sql(
            f"DELETE FROM {table} WHERE store_id = ?", [(store,) for store in stores]
        )
    if sqlite_rows.height:
        columns = ", ".join(sqlite_rows.columns)
        marks = ", ".join("?" for _ in sqlite_rows.columns)
        await connection.exec_driver_sql(
            f"INSERT INTO {table} ({columns}) VALUES ({marks})", sqlite_rows.rows()
        )
    return stores.len()


def _conformed(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """The frame's columns of `schema`, in its order; a wrong dtype is a programming error."""
    selected = frame.select(schema.names())
    if selected.schema != schema:
        raise TypeError(f"expected columns {dict(schema)}, got {dict(selected.schema)}")
    return selected


def _rowcount(result: sa.Result[Any]) -> int:
    assert isinstance(result, sa.CursorResult)
    return result.rowcount
