"""Polls into the database, a frame at a time: added once however often they come."""

import asyncio
from dataclasses import dataclass
from datetime import date
from typing import Final

import polars as pl
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.live_state import mark_changed
from store_monitor.db.models import Poll
from store_monitor.db.partitions import attach_poll_weeks, create_poll_weeks, partition_name
from store_monitor.db.postgres import copy_in_binary, copy_out
from store_monitor.frames import POLLS, STATUS
from store_monitor.ingest.loads import (
    IngestResult,
    Load,
    conformed,
    refused_values,
    sqlstate,
)

_STORED_POLLS: Final = """
SELECT p.store_id, (extract(epoch FROM p.timestamp_utc) * 1000000)::bigint, p.status
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS span (store_id, first, last)
CROSS JOIN LATERAL (
    SELECT p.store_id, p.timestamp_utc, p.status FROM polls AS p
    WHERE p.store_id = span.store_id AND p.timestamp_utc BETWEEN span.first AND span.last
) AS p
"""
# The stored polls with these keys (store_id, timestamp_utc), whatever their status.
_STORED_KEYS: Final = """
SELECT p.store_id, (extract(epoch FROM p.timestamp_utc) * 1000000)::bigint, p.status
FROM unnest($1::text[], $2::timestamptz[]) AS key (store_id, timestamp_utc)
JOIN polls AS p USING (store_id, timestamp_utc)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class _Polls:
    received: int
    """Polls in the frame."""
    spans: pl.DataFrame
    """The frame's stores in text order, with the span of their polls (`first`, `last`)."""
    by_week: dict[date, pl.DataFrame]
    """Its distinct polls by week (Monday, UTC), each sorted as the primary key, store ids
    coded alike."""


class PollsLoad(Load[_Polls]):
    """Adds polls (schema POLLS) and their stores; polls already stored are left as they are,
    those of an earlier frame of the same load included.

    Memory holds a frame and a row per store met, never the polls the load added: what was
    stored before the load lies within each store's span of polls as the `stores` row said when
    the load first met the store, and only that is looked up and left out. A poll repeated
    across frames is found by the database's primary key, at no cost when there is none: into
    an existing week a frame's COPY runs under a savepoint and, if it meets a poll an earlier
    frame stored, is retried without the polls the database holds; into a week this load made,
    repeats are found when its primary key is built (`finish`), and deleted before the build is
    retried. The stores' rows are written once, by `finish`.
    """

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        # Per store met: its span of polls stored before the load (or nulls).
        self._stores = pl.DataFrame(schema=_SPANS)
        # Per store met: the span of its polls in the load.
        self._spans = pl.DataFrame(schema=_SPANS)
        # Weeks' tables this load made: filled by every frame, attached by `finish`.
        self._new_weeks: list[date] = []

    def prepare(self, frame: pl.DataFrame) -> _Polls:
        spans, coded = _coded(conformed(frame, POLLS))
        return _Polls(received=frame.height, spans=spans, by_week=_by_week(coded))

    async def add(self, prepared: _Polls) -> None:
        self.received += prepared.received
        spans, by_week = prepared.spans, prepared.by_week
        if not by_week:
            return
        # Locked first: the stores' spans read next then include what other loads committed.
        weeks = set(by_week) - set(self._new_weeks)
        self._new_weeks += await create_poll_weeks(self.session, weeks)
        await self.session.execute(
            sa.text(f"LOCK TABLE {Poll.__tablename__} IN SHARE ROW EXCLUSIVE MODE")
        )
        await self._meet(spans["store_id"])
        self._spans = _widened(self._spans, spans)
        lookup = _stored_before(spans, self._stores)
        self.added += await _add_polls(self.session, by_week, lookup, self._new_weeks)

    async def _meet(self, store_ids: pl.Series) -> None:
        """Remember the stored span of the stores not met before."""
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
        before = pl.DataFrame([tuple(row) for row in found], schema=_SPANS, orient="row")
        met = new.to_frame("store_id").join(before, on="store_id", how="left")
        self._stores = pl.concat([self._stores, met.select(_SPANS.names()).cast(_SPANS)])

    async def finish(self) -> None:
        async with refused_values(Poll.__tablename__):
            await _record_spans(self.session, self._spans)
            for monday in self._new_weeks:
                self.added -= await _attach_without_repeats(self.session, monday)
        self._new_weeks = []
        # The live view evaluates the file's stores once this transaction commits; a file that
        # added nothing (sent again) changed nothing.
        if self.added:
            await mark_changed(self.session, self._stores["store_id"].to_list())

    def result(self) -> IngestResult:
        return IngestResult(received=self.received, added=self.added, stores=self._stores.height)


_SPANS: Final = pl.Schema(
    {"store_id": pl.String(), "first": POLLS["timestamp_utc"], "last": POLLS["timestamp_utc"]}
)
_KEY: Final = ", ".join(column.name for column in Poll.__table__.primary_key)
_UNIQUE_VIOLATION: Final = "23505"


def _widened(spans: pl.DataFrame, more: pl.DataFrame) -> pl.DataFrame:
    """Each store's span of polls over both frames of spans."""
    return (
        pl.concat([spans, more.select(_SPANS.names()).cast(_SPANS)])
        .group_by("store_id")
        .agg(pl.col("first").min(), pl.col("last").max())
    )


async def _record_spans(session: AsyncSession, spans: pl.DataFrame) -> None:
    """Add the stores of `spans`, and widen the span of polls their rows say to cover theirs."""
    if spans.is_empty():
        return
    # Rows locked in key order, as by the loads before: writers cannot deadlock on them.
    spans = spans.sort("store_id")
    ids, firsts, lasts = (spans[name].to_list() for name in ("store_id", "first", "last"))
    await session.execute(
        sa.text(
            "INSERT INTO stores (store_id, latest_poll_at, first_poll_at) SELECT * FROM "
            "unnest(CAST(:ids AS text[]), CAST(:lasts AS timestamptz[]), "
            "CAST(:firsts AS timestamptz[]))" + _SPAN_OF_POLLS
        ),
        {"ids": ids, "lasts": lasts, "firsts": firsts},
    )


async def _attach_without_repeats(session: AsyncSession, monday: date) -> int:
    """Attach the week's table this load made and filled; if its primary key finds polls in it
    more than once (sent by several frames), they are deleted first. How many were deleted."""
    try:
        async with session.begin_nested():
            await attach_poll_weeks(session, [monday])
        return 0
    except sa.exc.DBAPIError as error:
        if sqlstate(error) != _UNIQUE_VIOLATION:
            raise
    # Rare (a poll sent twice, far apart in the file): one more pass over the week's table.
    name = partition_name(monday)
    deleted = await session.execute(
        sa.text(
            f"DELETE FROM {name} WHERE ctid = ANY(ARRAY("
            f"SELECT ctid FROM (SELECT ctid, row_number() OVER (PARTITION BY {_KEY}) AS nth "
            f"FROM {name}) AS numbered WHERE nth > 1))"
        )
    )
    await attach_poll_weeks(session, [monday])
    return int(getattr(deleted, "rowcount", 0))


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
    by_week: dict[date, pl.DataFrame],
    lookup: pl.DataFrame,
    new_weeks: list[date],
) -> int:
    """Store the polls of `by_week` not stored yet, looking up what was stored before the load
    within the spans of `lookup`; how many were added (into the weeks of `new_weeks`, repeats
    of an earlier frame counted, for `finish` to take off). The caller holds the locks, and has
    made the tables of `new_weeks`, to attach once it has added them all."""
    # COPY, the fastest way in, fails on a row already stored rather than skipping it (an
    # INSERT ... ON CONFLICT could skip, at several times the cost): so what is stored in the
    # polls' spans is fetched and left out first, under the caller's lock (readers still read).
    # A poll outside every partition would fail the COPY: its week's table is made first, and
    # filled (by every frame of the load) before it is attached (see `create_poll_weeks`).
    if lookup.height:
        columns = (lookup[name].to_list() for name in ("store_id", "first", "last"))
        async with refused_values(Poll.__tablename__):
            stored = await copy_out(session, _STORED_POLLS, *columns)
        if stored:
            by_week = await asyncio.to_thread(_unstored_by_week, by_week, stored)
    added = 0
    into_stored_weeks = []
    for monday, week_polls in by_week.items():
        if monday not in new_weeks:
            into_stored_weeks.append(week_polls)
            continue
        # A refused row's line is counted in the frame its COPY sent.
        async with refused_values(Poll.__tablename__, week_polls):
            await copy_in_binary(session, partition_name(monday), week_polls)
        added += week_polls.height
    if into_stored_weeks:
        added += await _copy_unrepeated(session, pl.concat(into_stored_weeks))
    return added


async def _copy_unrepeated(session: AsyncSession, polls: pl.DataFrame) -> int:
    """COPY the polls into `polls`, those an earlier frame of the load stored left out; how
    many were added."""
    if polls.height == 0:
        return 0
    try:
        async with session.begin_nested(), refused_values(Poll.__tablename__, polls):
            await copy_in_binary(session, Poll.__tablename__, polls)
        return polls.height
    except sa.exc.DBAPIError as error:
        if sqlstate(error) != _UNIQUE_VIOLATION:
            raise
    # Rare (a poll sent twice, far apart in the file): each poll looked up by its key.
    async with refused_values(Poll.__tablename__):
        stored = await copy_out(
            session,
            _STORED_KEYS,
            polls["store_id"].cast(pl.String).to_list(),
            polls["timestamp_utc"].to_list(),
        )
    new = await asyncio.to_thread(_unstored, polls, stored) if stored else polls
    async with refused_values(Poll.__tablename__, new):
        await copy_in_binary(session, Poll.__tablename__, new)
    return new.height


def _by_week(polls: pl.DataFrame) -> dict[date, pl.DataFrame]:
    """The polls of each week (by its Monday, UTC: Polars' weeks start on Monday), in order."""
    keyed = polls.with_columns(_week=pl.col("timestamp_utc").dt.truncate("1w").dt.date())
    by_week = {}
    for (monday,), part in keyed.partition_by("_week", as_dict=True, include_key=False).items():
        if not isinstance(monday, date):
            raise ValueError("polls without a time stamp")
        by_week[monday] = part
    return by_week


def _unstored(polls: pl.DataFrame, stored_csv: bytes) -> pl.DataFrame:
    """The polls not among those of `stored_csv` (a `copy_out` of `_STORED_POLLS` or
    `_STORED_KEYS`)."""
    return _without(polls, _stored_polls(stored_csv, polls.schema["store_id"]))


def _unstored_by_week(
    by_week: dict[date, pl.DataFrame], stored_csv: bytes
) -> dict[date, pl.DataFrame]:
    """`_unstored` of each week's polls (their store ids coded alike)."""
    stored = _stored_polls(stored_csv, next(iter(by_week.values())).schema["store_id"])
    return {monday: _without(polls, stored) for monday, polls in by_week.items()}


def _stored_polls(stored_csv: bytes, store_ids: pl.DataType) -> pl.DataFrame:
    return pl.read_csv(stored_csv, has_header=False, schema=_STORED_POLLS_SCHEMA).select(
        pl.col("store_id").cast(store_ids),
        pl.col("at_us").cast(POLLS["timestamp_utc"]).alias("timestamp_utc"),
        "status",
    )


def _without(polls: pl.DataFrame, stored: pl.DataFrame) -> pl.DataFrame:
    return polls.join(stored, on=POLLS.names(), how="anti", maintain_order="left")
