"""A report's inputs read from the database: the engine's three frames for a report at an
instant, of all stores or a range of them, from one consistent snapshot."""

import asyncio
import contextlib
import itertools
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import polars as pl
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from store_monitor.concurrency import gather_all
from store_monitor.db.models import Store
from store_monitor.db.packed_inputs import Part, unpack_part
from store_monitor.db.store_hours import StoreHours, StoreHoursCache, current_hours
from store_monitor.frames import POLLS, PollWindows

# The engine looks back one week from `now`; a poll before that matters only as the status a
# store has when the week starts (see `load_report_inputs`).
_LOOK_BACK: Final = timedelta(weeks=1)


@dataclass(frozen=True, kw_only=True)
class ReportInputs:
    """What `compute_report` needs for a report at `now`, read from one snapshot of the data."""

    polls: pl.DataFrame
    """Schema POLLS but for `store_id`, an Enum of the stores' ids (any order): the polls in
    `[now - 1 week, now]`, plus each store's last poll before that week (inactive if a store has
    an active and an inactive poll at that instant). Its code is 2 or 4 bytes a poll where a
    text is 16: the polls are most of a report's memory."""
    business_hours: pl.DataFrame
    """Schema BUSINESS_HOURS, of the stores in `polls` only."""
    timezones: pl.DataFrame
    """Schema TIMEZONES, of the stores in `polls` only."""
    now: datetime | None
    """`as_of`, or else the latest poll; None when there are no polls and no `as_of`."""
    ignored_polls: int
    """Polls after `now`: not loaded, so the engine cannot count them itself."""


@dataclass(frozen=True, slots=True)
class StoreRange:
    """The store ids in `[first, end)` in byte order; None: no bound on that side."""

    first: str | None = None
    end: str | None = None


ALL_STORES: Final = StoreRange()


async def load_report_inputs(
    session: AsyncSession,
    *,
    as_of: datetime | None,
    stores: StoreRange = ALL_STORES,
    count_later: bool | None = None,
    store_ids: Sequence[str] | None = None,
    windows: PollWindows | None = None,
    hours: StoreHoursCache | None = None,
) -> ReportInputs:
    """The engine's inputs for a report at `as_of` (None: at the latest poll), of the stores
    in `stores` only, and of those among `store_ids` only if given (a live evaluation's). With
    `windows` (a live evaluation's), each store's polls from its window's start on, if later
    than the week's, plus its latest before. With `hours` (a runner's), the business hours and
    zones are its copy if still current in the snapshot read (else read whole, and kept there).

    `compute_report(inputs.polls, inputs.business_hours, inputs.timezones, as_of=inputs.now)`
    gives the same rows as on the full tables; take `ignored_polls` from here, not from it. It
    counts the polls after `now` if `count_later` (by default: if `as_of` is given); else 0.
    The read is one consistent snapshot: for a session not yet in a transaction, the stores in
    parts on connections of its engine sharing one read-only snapshot (the session itself stays
    unused); for a session in a transaction, one statement in it, whatever its isolation level.
    """
    if as_of is not None and as_of.tzinfo is None:
        raise ValueError("as_of must be time-zone aware")
    later = as_of is not None if count_later is None else count_later
    selection: dict[str, object] = {
        "store_ids": None if store_ids is None else list(store_ids),
        "window_ids": None if windows is None else windows.since["store_id"].to_list(),
        # Microseconds since the Unix epoch: a datetime object per store costs far more.
        "window_starts": None
        if windows is None
        else windows.since["since"].dt.epoch("us").to_list(),
        "default_since": None if windows is None else windows.default,
    }
    return await _load_postgres(session, as_of, stores, later, selection, hours)


async def store_ranges(session: AsyncSession, *, per_range: int) -> list[StoreRange]:
    """Contiguous ranges of the stores in byte order, as few as hold at most about `per_range`
    stores each, as even as can be, that together cover every store id (one if all fit)."""
    connection = await session.connection()
    count = await connection.scalar(sa.select(sa.func.count()).select_from(Store))
    assert isinstance(count, int)
    parts = max(1, -(-count // per_range))
    cuts = await _splits(connection, parts, ALL_STORES)
    bounds = [None, *cuts, None]
    return [StoreRange(first, end) for first, end in itertools.pairwise(bounds)]


# One statement for one part of the stores (see `_load_postgres`). It gathers, store by store,
# what the report needs of each, found through the store's index entries (primary keys led by
# store_id): the cost follows the week's polls and the number of stores, not the length of the
# history. Then it packs it all into ONE row of a few large values, each a run of fixed-width
# big-endian binary numbers (the types' "send" forms, e.g. `timestamptz_send`: microseconds
# since 2000 in 8 bytes) or of NUL-separated text, that Polars decodes at once: Postgres and
# asyncpg spend most of their time per row sent, and Python per value handled.
# Per reported store (a store with a poll at or before `now`), in one order: its id; three
# counts, of its active and inactive polls in the week and of its business-hours rows; and those
# polls' instants and the hours, as (day, start, end) records. Per store with a poll before the
# week, its id, the instant and whether inactive of the last such poll (DESC on status: an
# instant's inactive poll first). Per reported store with a time zone, its id and the zone.
# A store's polls are read from the week's start, or from a later instant of its own (a live
# evaluation's windows: `reads.since`), "the week" below.
# Polls are partitioned by week (db/partitions.py), and each look-up reads only the partitions
# its time bounds leave (pruned as it runs): the week's, and for the last poll before the week,
# latest first, down to the first partition with one of the store's polls, never below the
# store's first poll nor above its latest (a store silent since before the week: that one poll).
# Sub-queries stay lateral so that each store is looked up on the indexes, never hashed. Only
# the stores in [from_store, to_store) are read (None: no bound), and their later polls counted.
# Without `with_hours`, no hours nor zones (the caller has them: `store_hours`).
_POSTGRES_INPUTS: Final = sa.text("""
WITH resolved AS MATERIALIZED (
    SELECT coalesce(CAST(:as_of AS timestamptz), (SELECT max(latest_poll_at) FROM stores)) AS now
),
bounds AS MATERIALIZED (
    SELECT now, now - interval '168 hours' AS week_start FROM resolved
),
reported AS (
    SELECT s.store_id, before.timestamp_utc AS before_at, before.status AS before_status,
           week.active, week.inactive, zone.timezone_str, hours.records AS hours
    FROM bounds
    CROSS JOIN stores AS s
    LEFT JOIN unnest(CAST(:window_ids AS text[]), CAST(:window_starts AS bigint[]))
        AS w (store_id, since_us) ON w.store_id = s.store_id
    CROSS JOIN LATERAL (
        SELECT greatest(
            bounds.week_start,
            coalesce(
                CAST('epoch' AS timestamptz) + w.since_us * interval '1 microsecond',
                CAST(:default_since AS timestamptz)
            )
        ) AS since
    ) AS reads
    LEFT JOIN LATERAL (
        SELECT p.timestamp_utc, p.status FROM polls AS p
        WHERE p.store_id = s.store_id AND p.timestamp_utc < reads.since
          AND p.timestamp_utc BETWEEN s.first_poll_at AND s.latest_poll_at
        ORDER BY p.timestamp_utc DESC, p.status DESC
        LIMIT 1
    ) AS before ON true
    CROSS JOIN LATERAL (
        SELECT string_agg(timestamptz_send(p.timestamp_utc), '')
                   FILTER (WHERE p.status = 'active') AS active,
               string_agg(timestamptz_send(p.timestamp_utc), '')
                   FILTER (WHERE p.status = 'inactive') AS inactive
        FROM polls AS p
        WHERE p.store_id = s.store_id
          AND p.timestamp_utc >= reads.since AND p.timestamp_utc <= bounds.now
    ) AS week
    LEFT JOIN timezones AS zone ON zone.store_id = s.store_id AND CAST(:with_hours AS boolean)
    CROSS JOIN LATERAL (
        SELECT string_agg(
            int8send(h.day_of_week::bigint) || time_send(h.start_time_local)
                || time_send(h.end_time_local),
            ''
        ) AS records
        FROM business_hours AS h
        WHERE h.store_id = s.store_id AND CAST(:with_hours AS boolean)
    ) AS hours
    WHERE s.store_id >= coalesce(CAST(:from_store AS text), '')
      AND (CAST(:to_store AS text) IS NULL OR s.store_id < CAST(:to_store AS text))
      AND (CAST(:store_ids AS text[]) IS NULL OR s.store_id = ANY(CAST(:store_ids AS text[])))
      AND (before.timestamp_utc IS NOT NULL OR week.active IS NOT NULL
           OR week.inactive IS NOT NULL)
)
SELECT
    (SELECT now FROM bounds) AS now,
    CASE WHEN NOT CAST(:count_later AS boolean) THEN 0 ELSE (
        SELECT CAST(coalesce(sum(later.polls), 0) AS bigint)
        FROM stores AS s
        CROSS JOIN bounds
        CROSS JOIN LATERAL (
            SELECT count(*) AS polls FROM polls AS p
            WHERE p.store_id = s.store_id AND p.timestamp_utc > bounds.now
        ) AS later
        WHERE s.latest_poll_at > bounds.now
          AND s.store_id >= coalesce(CAST(:from_store AS text), '')
          AND (CAST(:to_store AS text) IS NULL OR s.store_id < CAST(:to_store AS text))
    ) END AS ignored_polls,
    string_agg(convert_to(r.store_id, 'UTF8'), '\\x00') AS store_ids,
    string_agg(
        int4send(coalesce(octet_length(r.active), 0) / 8)
            || int4send(coalesce(octet_length(r.inactive), 0) / 8)
            || int4send(coalesce(octet_length(r.hours), 0) / 24),
        ''
    ) AS counts,
    string_agg(r.active, '') AS active,
    string_agg(r.inactive, '') AS inactive,
    string_agg(r.hours, '') AS hours,
    string_agg(convert_to(r.store_id, 'UTF8'), '\\x00') FILTER (WHERE r.before_at IS NOT NULL)
        AS before_store_ids,
    string_agg(timestamptz_send(r.before_at), '') AS before_at,
    string_agg(boolsend(r.before_status = 'inactive'), '') AS before_inactive,
    string_agg(convert_to(r.store_id, 'UTF8'), '\\x00') FILTER (WHERE r.timezone_str IS NOT NULL)
        AS zone_store_ids,
    string_agg(convert_to(r.timezone_str, 'UTF8'), '\\x00') AS zones
-- An aggregate without GROUP BY: one row, even of no stores.
FROM reported AS r
""")


# Postgres runs a statement on one core, and cannot share lateral look-ups among its parallel
# workers: the stores are read in this many parts at once, on as many connections.
_PARTS: Final = 2
# A live evaluation's second pass (its few unsettled stores) is read on one connection: a second
# one and the snapshot it imports cost more than they save.
_FEW_STORES: Final = 1000
_WITH_HOURS: Final = {"with_hours": True}
_SNAPSHOT_ID: Final = re.compile(r"[0-9A-F]+(-[0-9A-F]+)*")


async def _load_postgres(
    session: AsyncSession,
    as_of: datetime | None,
    stores: StoreRange,
    count_later: bool,
    selection: dict[str, object],
    hours: StoreHoursCache | None,
) -> ReportInputs:
    engine = session.bind
    if session.in_transaction() or not isinstance(engine, AsyncEngine):
        # In the caller's transaction: one statement, which sees its writes too (and the hours
        # with them: in READ COMMITTED, a version read apart could be of another snapshot).
        part = await _read_part(
            await session.connection(), as_of, stores, count_later, selection | _WITH_HOURS
        )
        return _joined([part])
    # A session yet to start its transaction reads committed data: in parts, on connections of
    # its engine that share one snapshot (exported by the first, as `pg_dump --jobs` does).
    reader = engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    selected = selection["store_ids"]
    few = isinstance(selected, list) and len(selected) <= _FEW_STORES
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(_reading(reader))
        connections, ranges = [first], [stores]
        if not few:
            snapshot = await first.scalar(sa.text("SELECT pg_export_snapshot()"))
            if not isinstance(snapshot, str) or not _SNAPSHOT_ID.fullmatch(snapshot):
                raise RuntimeError(f"unexpected snapshot id {snapshot!r}")
            bounds = [stores.first, *await _splits(first, _PARTS, stores), stores.end]
            ranges = [StoreRange(start, end) for start, end in itertools.pairwise(bounds)]
            for _ in ranges[1:]:
                other = await stack.enter_async_context(_reading(reader))
                # SET TRANSACTION takes no parameters; the id was checked above.
                await other.execute(sa.text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
                connections.append(other)
        kept = None if hours is None else await current_hours(first, hours)
        read = selection | ({"with_hours": kept is None})
        # Every part ends before the connections are closed.
        parts = await gather_all(
            *(
                _read_part(connection, as_of, part, count_later, read)
                for connection, part in zip(connections, ranges, strict=True)
            )
        )
    return _joined(parts, kept)


def _joined(parts: Sequence[Part], kept: StoreHours | None = None) -> ReportInputs:
    """The parts' inputs as one, their stores' codes made those of one Enum of all their ids;
    the hours and zones of their stores from `kept` if given, else the parts'."""
    store_ids = pl.concat([part.store_ids for part in parts])
    stores = pl.Enum(store_ids)
    # Each part's codes number its own stores from 0; its stores follow the earlier parts'.
    firsts = itertools.accumulate((part.store_ids.len() for part in parts[:-1]), initial=0)
    polls = pl.concat(
        part.polls.select(
            (pl.col("store_code") + first).cast(pl.UInt32).cat.to(stores).alias("store_id"),
            *POLLS.names()[1:],
        )
        for part, first in zip(parts, firsts, strict=True)
    )
    if kept is None:
        business_hours = pl.concat([part.business_hours for part in parts])
        timezones = pl.concat([part.timezones for part in parts])
    else:
        polled = pl.DataFrame({"store_id": store_ids})
        business_hours = kept.business_hours.join(polled, on="store_id", how="semi")
        timezones = kept.timezones.join(polled, on="store_id", how="semi")
    return ReportInputs(
        polls=polls,
        business_hours=business_hours,
        timezones=timezones,
        now=parts[0].now,
        ignored_polls=sum(part.ignored_polls for part in parts),
    )


@contextlib.asynccontextmanager
async def _reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection of the engine, for reads only."""
    connection = await engine.connect()
    try:
        yield connection
    except BaseException:
        # A query cut short (a cancelled task) leaves asyncpg's connection closed, and rolling
        # back would raise in place of the original error. Nothing was written: drop it.
        await connection.invalidate()
        raise
    finally:
        await connection.close()


async def _splits(connection: AsyncConnection, parts: int, stores: StoreRange) -> list[str]:
    """Store ids that cut the stores in `stores` into `parts` parts of about as many stores,
    in order, each cut inside the range; fewer if there are fewer stores."""
    if parts < 2:
        return []
    splits = await connection.scalar(
        sa.text(
            "SELECT percentile_disc(CAST(:fractions AS float8[])) WITHIN GROUP (ORDER BY store_id) "
            "FROM stores "
            "WHERE store_id >= coalesce(CAST(:first AS text), '') "
            "AND (CAST(:end AS text) IS NULL OR store_id < CAST(:end AS text))"
        ),
        {
            "fractions": [part / parts for part in range(1, parts)],
            "first": stores.first,
            "end": stores.end,
        },
    )
    # A cut equal to the range's start, or to the cut before it, would make an empty part.
    cuts: list[str] = []
    for cut in splits or []:
        if cut != stores.first and (not cuts or cut != cuts[-1]):
            cuts.append(cut)
    return cuts


async def _read_part(
    connection: AsyncConnection,
    as_of: datetime | None,
    stores: StoreRange,
    count_later: bool,
    selection: dict[str, object],
) -> Part:
    """The inputs of the stores in `stores`, selected and from the instants `selection` says
    (the statement's `store_ids`, `window_ids`, `window_starts` and `default_since`)."""
    packed = await connection.execute(
        _POSTGRES_INPUTS,
        {
            "as_of": as_of,
            "from_store": stores.first,
            "to_store": stores.end,
            "count_later": count_later,
            **selection,
        },
    )
    # Some tens of milliseconds of decoding for millions of polls: off the event loop.
    return await asyncio.to_thread(unpack_part, packed.one()._mapping)
