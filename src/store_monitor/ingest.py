"""Validated input frames (from `store_monitor.sources`) into the database.

Polls are added (a re-ingested poll adds nothing); business hours and time zones replace the
rows of the stores present in the new frame, store owners the memberships of its owners. Each
function is a step of the caller's transaction: it flushes and never commits, so a load that
fails part-way leaves nothing behind once the caller rolls back. A value the database refuses
(one the readers let through) is a `ValueRefused` naming the table and, where the database
says, the store: bad data, not a bug.
"""

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Final

import polars as pl
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.live_state import mark_changed
from store_monitor.db.models import BusinessHours, Poll, StoreOwner, Timezone
from store_monitor.db.partitions import attach_poll_weeks, create_poll_weeks, partition_name
from store_monitor.db.postgres import copy_in, copy_in_binary, copy_out
from store_monitor.frames import BUSINESS_HOURS, OWNERS, POLLS, STATUS, TIMEZONES
from store_monitor.sources import SHOWN_CHARS, shortened

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
# A store's row follows its latest and its first poll.
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


# Postgres error classes of a value the database cannot take: data exceptions (e.g. a NUL in
# text, 22021) and program limits (e.g. an index row too large, 54000). Not outages, not bugs.
_REFUSED_VALUE_CLASSES: Final = ("22", "54")
_COPY_LINE: Final = re.compile(r"^COPY \S+, line (\d+)")


class ValueRefused(ValueError):
    """The database refused a value of an ingested frame: bad data (4xx), not an outage.

    `store_id` is that of the refused row when the database said which row (COPY does)."""

    def __init__(self, table: str, reason: str, *, store_id: str | None = None) -> None:
        self.table = table
        self.reason = reason
        self.store_id = store_id
        row = "" if store_id is None else f" (the row of store {shortened(store_id)})"
        self.message = f"{table}: the database refused a value{row}: {reason}"
        super().__init__(self.message)


@contextlib.asynccontextmanager
async def _refused_values(table: str, copied: pl.DataFrame | None = None) -> AsyncIterator[None]:
    """Raise the database's refusal of a value as `ValueRefused`, naming the row of `copied`
    (the frame a COPY sends) when the error says which line of the COPY it was."""
    try:
        yield
    except sa.exc.DBAPIError as error:
        # SQLAlchemy's adapted error wraps the driver's, which carries the details.
        driver = getattr(error.orig, "__cause__", None) or error.orig
        sqlstate = getattr(error.orig, "sqlstate", None) or getattr(driver, "sqlstate", None)
        if not (isinstance(sqlstate, str) and sqlstate.startswith(_REFUSED_VALUE_CLASSES)):
            raise
        line = _COPY_LINE.match(getattr(driver, "context", None) or "")
        store_id = None
        if line is not None and copied is not None and 0 < int(line[1]) <= copied.height:
            store_id = str(copied["store_id"][int(line[1]) - 1])
        # The driver's message only: the statement and its parameters stay out.
        reason = str(getattr(driver, "message", None) or error.orig).partition("\n")[0]
        if len(reason) > SHOWN_CHARS:  # Postgres may quote the value it refused
            reason = reason[:SHOWN_CHARS] + "..."
        raise ValueRefused(table, reason, store_id=store_id) from error


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
    added = await _add_polls(session, coded, spans)
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


async def _add_polls(session: AsyncSession, coded: pl.DataFrame, spans: pl.DataFrame) -> int:
    # COPY cannot skip rows already stored, and INSERT ... ON CONFLICT from a COPY-filled
    # temporary table was four times slower than COPY alone. So: loads take turns on the table
    # (readers are not blocked), fetch what is stored of the new polls' stores and time
    # spans, and COPY only the rest.
    # A poll outside every partition would fail the COPY: its week's table is made first, and
    # filled before it is attached (see `create_poll_weeks`).
    weeks = await create_poll_weeks(session, await asyncio.to_thread(_weeks, coded))
    await session.execute(sa.text(f"LOCK TABLE {Poll.__tablename__} IN SHARE ROW EXCLUSIVE MODE"))
    ids, firsts, lasts = (spans[name].to_list() for name in ("store_id", "first", "last"))
    async with _refused_values(Poll.__tablename__):
        stored = await copy_out(session, _STORED_POLLS, ids, firsts, lasts)
        await session.execute(
            sa.text(
                "INSERT INTO stores (store_id, latest_poll_at, first_poll_at) SELECT * FROM "
                "unnest(CAST(:ids AS text[]), CAST(:lasts AS timestamptz[]), "
                "CAST(:firsts AS timestamptz[]))" + _SPAN_OF_POLLS
            ),
            {"ids": ids, "lasts": lasts, "firsts": firsts},
        )
    new = await asyncio.to_thread(_unstored, coded, stored) if stored else coded
    rest = new
    if weeks:
        into_new_weeks, rest = await asyncio.to_thread(_split_by_week, new, weeks)
        for monday, week_polls in into_new_weeks.items():
            # A refused row's line is counted in the frame its COPY sent.
            async with _refused_values(Poll.__tablename__, week_polls):
                await copy_in_binary(session, partition_name(monday), week_polls)
        async with _refused_values(Poll.__tablename__):
            await attach_poll_weeks(session, weeks)
    async with _refused_values(Poll.__tablename__, rest):
        await copy_in_binary(session, Poll.__tablename__, rest)
    # The live view evaluates the stores with new polls once this transaction commits.
    await mark_changed(session, new["store_id"].unique().cast(pl.String).to_list())
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


async def ingest_business_hours(session: AsyncSession, hours: pl.DataFrame) -> IngestResult:
    """Replace the business hours (schema BUSINESS_HOURS) of every store in `hours`.

    A store's rows are its whole week: days without a row are closed days, so rows of an earlier
    load are never merged with the new ones. Stores not in `hours` keep theirs.
    """
    frame = _conformed(hours, BUSINESS_HOURS).unique().sort(BUSINESS_HOURS.names())
    stores = await _replace(session, BusinessHours.__tablename__, frame)
    await mark_changed(session, frame["store_id"].unique().to_list())
    return IngestResult(received=hours.height, added=frame.height, stores=stores)


async def ingest_timezones(session: AsyncSession, zones: pl.DataFrame) -> IngestResult:
    """Replace the time zone (schema TIMEZONES) of every store in `zones`; where a store has
    several rows the last one wins, as in the engine."""
    frame = _conformed(zones, TIMEZONES).unique(subset="store_id", keep="last").sort("store_id")
    stores = await _replace(session, Timezone.__tablename__, frame)
    await mark_changed(session, frame["store_id"].unique().to_list())
    return IngestResult(received=zones.height, added=frame.height, stores=stores)


async def ingest_owners(session: AsyncSession, owners: pl.DataFrame) -> IngestResult:
    """Replace the stores of every owner in `owners` (schema OWNERS) with the frame's; other
    owners keep theirs. `stores` counts the distinct stores of the frame."""
    frame = _conformed(owners, OWNERS).unique().sort(OWNERS.names())
    await _replace(session, StoreOwner.__tablename__, frame, key="owner_id")
    return IngestResult(
        received=owners.height, added=frame.height, stores=frame["store_id"].n_unique()
    )


async def _replace(
    session: AsyncSession, table: str, frame: pl.DataFrame, *, key: str = "store_id"
) -> int:
    """Delete the rows of `table` whose `key` (a store, or an owner) is in `frame`, then insert
    `frame`; the number of keys replaced."""
    stores = frame[key].unique().sort()
    # Two loads replacing the same stores at once would each miss the other's new rows and
    # then collide on them: loads of one table take turns (readers are not blocked).
    await session.execute(sa.text(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))
    async with _refused_values(table):
        await session.execute(
            sa.text(f"DELETE FROM {table} WHERE {key} = ANY(CAST(:ids AS text[]))"),
            {"ids": stores.to_list()},
        )
    async with _refused_values(table, frame):
        await copy_in(session, table, frame)
    return stores.len()


def _conformed(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """The frame's columns of `schema`, in its order; a wrong dtype is a programming error."""
    selected = frame.select(schema.names())
    if selected.schema != schema:
        raise TypeError(f"expected columns {dict(schema)}, got {dict(selected.schema)}")
    return selected
