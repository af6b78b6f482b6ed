"""Validated input into the database: frames (from `store_monitor.sources`), or CSV bytes read
and stored a chunk at a time, so that a file of any size loads in bounded memory.

Polls are added (a re-ingested poll adds nothing); business hours and time zones replace the
rows of the stores present in the new file, store owners the memberships of its owners. Every
load is a step of the caller's transaction: it flushes and never commits, so a load that fails
part-way (a bad row in its last chunk) leaves nothing behind once the caller rolls back. A value
the database refuses (one the readers let through) is a `ValueRefused` naming the table and,
where the database says, the store: bad data, not a bug.
"""

import asyncio
import contextlib
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

import polars as pl
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import BusinessHours, Poll, StoreOwner, Timezone
from store_monitor.db.partitions import attach_poll_weeks, create_poll_weeks, partition_name
from store_monitor.db.postgres import copy_in, copy_in_binary, copy_out
from store_monitor.frames import BUSINESS_HOURS, OWNERS, POLLS, STATUS, TIMEZONES
from store_monitor.sources import SHOWN_CHARS, BlankSource, Chunk, CsvChunks, shortened
from store_monitor.sources.chunks import CHUNK_BYTES

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


class Load(ABC):
    """One file into the database, a frame (a chunk of the file) at a time, all in the session's
    transaction; `result` once every frame was added."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.received = 0
        self.added = 0

    @abstractmethod
    async def add(self, frame: pl.DataFrame) -> None: ...

    @abstractmethod
    async def finish(self) -> None:
        """The load's last step, once every frame was added."""

    @abstractmethod
    def result(self) -> IngestResult: ...


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
        spans, coded = await asyncio.to_thread(_coded, _conformed(frame, POLLS))
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
        async with _refused_values(Poll.__tablename__):
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
        async with _refused_values(Poll.__tablename__):
            await attach_poll_weeks(self.session, self._new_weeks)
        self._new_weeks = []

    def result(self) -> IngestResult:
        return IngestResult(received=self.received, added=self.added, stores=self._stores.height)


class _ReplacingLoad(Load):
    """Replaces the rows of `table` of every `key` (a store, or an owner) in the file with the
    file's: a key's rows are deleted when the key first appears, so that rows of one key split
    over several frames all stay."""

    table: str
    schema: pl.Schema
    key = "store_id"

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self._keys: set[str] = set()
        self._stores: set[str] = set()

    def rows(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The frame's rows to store, sorted as the primary key."""
        return frame.unique().sort(self.schema.names())

    async def add(self, frame: pl.DataFrame) -> None:
        self.received += frame.height
        rows = self.rows(_conformed(frame, self.schema))
        if not self._keys:
            # Two loads replacing the same stores at once would each miss the other's new rows
            # and then collide on them: loads of one table take turns (readers are not blocked).
            await self.session.execute(
                sa.text(f"LOCK TABLE {self.table} IN SHARE ROW EXCLUSIVE MODE")
            )
        keys = set(rows[self.key].to_list())
        replaced, carried = self.replaced(keys), keys & self._keys
        async with _refused_values(self.table):
            await self.session.execute(
                sa.text(f"DELETE FROM {self.table} WHERE {self.key} = ANY(CAST(:ids AS text[]))"),
                {"ids": sorted(replaced)},
            )
            if carried - replaced:
                rows = rows.join(
                    await self._stored(carried - replaced), on=self.schema.names(), how="anti"
                )
        async with _refused_values(self.table, rows):
            await copy_in(self.session, self.table, rows)
        self._keys |= keys
        self._stores.update(rows["store_id"].to_list())
        self.added += rows.height

    async def finish(self) -> None:
        """Nothing is left to do: every frame's rows went to the table as it came."""

    def replaced(self, keys: set[str]) -> set[str]:
        """The keys whose stored rows the frame's replace: those not seen in an earlier frame."""
        return keys - self._keys

    async def _stored(self, keys: set[str]) -> pl.DataFrame:
        """What an earlier frame stored of these keys: a row repeated across frames counts once."""
        columns = ", ".join(self.schema.names())
        found = await self.session.execute(
            sa.text(
                f"SELECT {columns} FROM {self.table} WHERE {self.key} = ANY(CAST(:ids AS text[]))"
            ),
            {"ids": sorted(keys)},
        )
        return pl.DataFrame([tuple(row) for row in found], schema=self.schema, orient="row")

    def result(self) -> IngestResult:
        return IngestResult(received=self.received, added=self.added, stores=len(self._stores))


class HoursLoad(_ReplacingLoad):
    """Replaces the business hours (schema BUSINESS_HOURS) of every store in the file.

    A store's rows are its whole week: days without a row are closed days, so rows of an earlier
    load are never merged with the new ones. Stores not in the file keep theirs."""

    table = BusinessHours.__tablename__
    schema = BUSINESS_HOURS


class TimezonesLoad(_ReplacingLoad):
    """Replaces the time zone (schema TIMEZONES) of every store in the file; where a store has
    several rows the last one wins, as in the engine."""

    table = Timezone.__tablename__
    schema = TIMEZONES

    def rows(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.unique(subset="store_id", keep="last").sort("store_id")

    def replaced(self, keys: set[str]) -> set[str]:
        return keys  # a later row wins over one of an earlier frame too

    def result(self) -> IngestResult:
        stores = len(self._stores)
        return IngestResult(received=self.received, added=stores, stores=stores)


class OwnersLoad(_ReplacingLoad):
    """Replaces the stores of every owner in the file (schema OWNERS) with the file's; other
    owners keep theirs. `stores` counts the distinct stores of the file."""

    table = StoreOwner.__tablename__
    schema = OWNERS
    key = "owner_id"


BLOCK_BYTES: Final = 1024 * 1024
"""A file is read this much at a time."""


async def load_csv(
    load: Load,
    blocks: AsyncIterable[bytes],
    *,
    name: str,
    read: Callable[[bytes], pl.DataFrame],
    allow_blank: bool = True,
    chunk_bytes: int = CHUNK_BYTES,
) -> IngestResult:
    """CSV bytes, as they arrive, read a chunk of records at a time by `read` (a reader of
    `store_monitor.sources`) and added to `load`: memory holds a chunk, not the file. Errors
    are the reader's, located by the file's lines; a compressed file is a `CompressedSource`,
    and without `allow_blank` one of only whitespace a `BlankSource`."""
    chunks = CsvChunks(name, chunk_bytes=chunk_bytes)

    async def add(found: list[Chunk]) -> None:
        for chunk in found:
            # Parsing is CPU work (Polars, off the GIL): a thread keeps the event loop serving.
            await load.add(await asyncio.to_thread(chunk.read, read))

    async for block in blocks:
        await add(chunks.feed(block))
    if chunks.blank and not allow_blank:
        raise BlankSource(name)
    await add(chunks.finish())
    await load.finish()
    return load.result()


async def file_blocks(path: Path) -> AsyncIterator[bytes]:
    """The file's bytes, BLOCK_BYTES at a time."""
    with path.open("rb") as file:
        while block := await asyncio.to_thread(file.read, BLOCK_BYTES):
            yield block


async def _whole(load: Load, frame: pl.DataFrame) -> IngestResult:
    await load.add(frame)
    await load.finish()
    return load.result()


async def ingest_polls(session: AsyncSession, polls: pl.DataFrame) -> IngestResult:
    """A whole frame of polls, as `PollsLoad`."""
    return await _whole(PollsLoad(session), polls)


async def ingest_business_hours(session: AsyncSession, hours: pl.DataFrame) -> IngestResult:
    """A whole frame of business hours, as `HoursLoad`."""
    return await _whole(HoursLoad(session), hours)


async def ingest_timezones(session: AsyncSession, zones: pl.DataFrame) -> IngestResult:
    """A whole frame of time zones, as `TimezonesLoad`."""
    return await _whole(TimezonesLoad(session), zones)


async def ingest_owners(session: AsyncSession, owners: pl.DataFrame) -> IngestResult:
    """A whole frame of store owners, as `OwnersLoad`."""
    return await _whole(OwnersLoad(session), owners)


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
    # COPY cannot skip rows already stored, and INSERT ... ON CONFLICT from a COPY-filled
    # temporary table was four times slower than COPY alone. So: loads take turns on the table
    # (readers are not blocked), fetch what is stored of the new polls' stores and time
    # spans, and COPY only the rest.
    # A poll outside every partition would fail the COPY: its week's table is made first, and
    # filled (by every frame of the load) before it is attached (see `create_poll_weeks`).
    ids, firsts, lasts = (spans[name].to_list() for name in ("store_id", "first", "last"))
    async with _refused_values(Poll.__tablename__):
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
            async with _refused_values(Poll.__tablename__, week_polls):
                await copy_in_binary(session, partition_name(monday), week_polls)
    async with _refused_values(Poll.__tablename__, rest):
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


def _conformed(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """The frame's columns of `schema`, in its order; a wrong dtype is a programming error."""
    selected = frame.select(schema.names())
    if selected.schema != schema:
        raise TypeError(f"expected columns {dict(schema)}, got {dict(selected.schema)}")
    return selected
