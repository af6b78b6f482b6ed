"""Polls into the database, a frame at a time: added once however often they come."""

import asyncio
from datetime import date
from typing import Final

import polars as pl
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import Poll
from store_monitor.db.partitions import attach_poll_weeks, create_poll_weeks, partition_name
from store_monitor.db.postgres import copy_in_binary, copy_out
from store_monitor.frames import POLLS, STATUS
from store_monitor.ingest.loads import IngestResult, Load, conformed, refused_values

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


class PollsLoad(Load):
    """Adds polls (schema POLLS) and their stores; polls already stored are left as they are,
    those of an earlier frame of the same load included.

    What was stored before the load lies within each store's span of polls as the `stores` row
    said when the load first met the store: only that is looked up in the database. What the
    load added itself is remembered compactly (12 bytes a poll), so that a frame's polls are
    never looked up among the load's own rows again and again.
    """

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        # Per store met: a code, and the span of its polls stored before the load (or nulls).
        self._stores = pl.DataFrame(schema=_STORES_MET)
        self._added = pl.DataFrame(schema=_ADDED)
        # Weeks' tables this load made: filled by every frame, attached by `finish`.
        self._new_weeks: list[date] = []

    async def add(self, frame: pl.DataFrame) -> None:
        self.received += frame.height
        # Seconds of Polars work for millions of polls: in a thread, off the event loop.
        spans, coded = await asyncio.to_thread(_coded, conformed(frame, POLLS))
        if coded.height == 0:
            return
        # Locked first: the stores' spans read next then include what other loads committed.
        weeks = set(await asyncio.to_thread(_weeks, coded)) - set(self._new_weeks)
        self._new_weeks += await create_poll_weeks(self.session, weeks)
        await self.session.execute(
            sa.text(f"LOCK TABLE {Poll.__tablename__} IN SHARE ROW EXCLUSIVE MODE")
        )
        await self._meet(spans["store_id"])
        lookup = _stored_before(spans, self._stores)
        unseen = await asyncio.to_thread(_not_added, coded, self._stores, self._added)
        added = await _add_polls(self.session, unseen, spans, lookup, self._new_weeks)
        self.added += added.height
        self._added = pl.concat([self._added, _keyed(added, self._stores).drop("_row")])

    async def _meet(self, store_ids: pl.Series) -> None:
        """Remember the stores not met before: a code each, and their stored span."""
        new = store_ids.filter(~store_ids.is_in(self._stores["store_id"].implode()))
        if new.is_empty():
            return
        async with refused_values(Poll.__tablename__):
            found = await self.session.execute(
                sa.text(
                    "SELECT store_id, first_poll_at, latest_poll_at FROM stores "
                    "WHERE store_id = ANY(CAST(:ids AS text[]))"
                ),
                {"ids": new.to_list()},
            )
        before = pl.DataFrame([tuple(row) for row in found], schema=_SPANS_BEFORE, orient="row")
        met = (
            new.to_frame("store_id")
            .join(before, on="store_id", how="left")
            .with_row_index("store_code", offset=self._stores.height)
            .select(_STORES_MET.names())
        )
        self._stores = pl.concat([self._stores, met.cast(_STORES_MET)])

    async def finish(self) -> None:
        async with refused_values(Poll.__tablename__):
            await attach_poll_weeks(self.session, self._new_weeks)
        self._new_weeks = []

    def result(self) -> IngestResult:
        return IngestResult(received=self.received, added=self.added, stores=self._stores.height)


_SPANS_BEFORE: Final = pl.Schema(
    {"store_id": pl.String(), "first": POLLS["timestamp_utc"], "last": POLLS["timestamp_utc"]}
)
_STORES_MET: Final = pl.Schema({"store_code": pl.UInt32(), **_SPANS_BEFORE})
# A poll of the load: its store's code, and its instant (microseconds) and status in one number.
_ADDED: Final = pl.Schema({"store_code": pl.UInt32(), "poll": pl.Int64()})


def _keyed(polls: pl.DataFrame, stores: pl.DataFrame) -> pl.DataFrame:
    """Each poll's `_ADDED` key, in order, with its row number (`_row`)."""
    return (
        polls.select(
            pl.col("store_id").cast(pl.String),
            poll=pl.col("timestamp_utc").dt.epoch("us") * 2
            + (pl.col("status") == "inactive").cast(pl.Int64),
        )
        .with_row_index("_row")
        .join(
            stores.select("store_id", "store_code"),
            on="store_id",
            how="left",
            maintain_order="left",
        )
        .select("_row", *_ADDED.names())
    )


def _not_added(coded: pl.DataFrame, stores: pl.DataFrame, added: pl.DataFrame) -> pl.DataFrame:
    """The polls of `coded` that the load did not add before."""
    keyed = _keyed(coded, stores)
    if added.is_empty():
        return coded
    rows = keyed.join(added, on=_ADDED.names(), how="anti", maintain_order="left")["_row"]
    return coded[rows]


def _stored_before(spans: pl.DataFrame, stores: pl.DataFrame) -> pl.DataFrame:
    """The part of each store's span (`first`, `last`) where it had polls before the load."""
    return (
        spans.join(stores, on="store_id", how="inner", suffix="_before")
        .filter(pl.col("first_before").is_not_null())
        .select(
            "store_id",
            first=pl.max_horizontal("first", "first_before"),
            last=pl.min_horizontal("last", "last_before"),
        )
        .filter(pl.col("first") <= pl.col("last"))
    )


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


async def _add_polls(
    session: AsyncSession,
    coded: pl.DataFrame,
    spans: pl.DataFrame,
    lookup: pl.DataFrame,
    new_weeks: list[date],
) -> pl.DataFrame:
    """Store the polls of `coded` not stored yet, looking up what is stored within the spans
    of `lookup`; update the stores' rows by `spans`. The polls added. The caller holds the
    locks, and has made the tables of `new_weeks`, to attach once it has added them all."""
    # COPY, the fastest way in, fails on a row already stored rather than skipping it (an
    # INSERT ... ON CONFLICT could skip, at several times the cost): so what is stored in the
    # polls' spans is fetched and left out first, under the caller's lock (readers still read).
    # A poll outside every partition would fail the COPY: its week's table is made first, and
    # filled (by every frame of the load) before it is attached (see `create_poll_weeks`).
    ids, firsts, lasts = (spans[name].to_list() for name in ("store_id", "first", "last"))
    async with refused_values(Poll.__tablename__):
        stored = b""
        if lookup.height:
            columns = (lookup[name].to_list() for name in ("store_id", "first", "last"))
            stored = await copy_out(session, _STORED_POLLS, *columns)
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
    if new_weeks:
        into_new_weeks, rest = await asyncio.to_thread(_split_by_week, new, new_weeks)
        for monday, week_polls in into_new_weeks.items():
            # A refused row's line is counted in the frame its COPY sent.
            async with refused_values(Poll.__tablename__, week_polls):
                await copy_in_binary(session, partition_name(monday), week_polls)
    async with refused_values(Poll.__tablename__, rest):
        await copy_in_binary(session, Poll.__tablename__, rest)
    return new


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
