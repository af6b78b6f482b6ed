"""The weekly partitions of `polls` (Postgres): made ahead of the polls, dropped by retention.

`polls` is range-partitioned on `timestamp_utc`, one partition per ISO week in UTC, Monday
00:00 included to the next Monday 00:00 excluded, named after its Monday: `polls_20230116`.
There is no DEFAULT partition: a poll outside every partition would fail its COPY, so ingest
creates the weeks its polls need first (`create_poll_weeks`), and a DEFAULT partition would
only make every later CREATE scan it. Every function here is a step of the caller's transaction.

A week's table is made ahead of its polls (`make_poll_weeks_ahead`) empty and not yet attached:
its first load fills it and builds its primary key in one sort before attaching it, as for a
week the load makes itself, rather than maintaining the key row by row, which halves the rate.
An attached week is never detached or swapped (that would take an ACCESS EXCLUSIVE lock on
`polls`, waiting for every report reading it); its later loads maintain the key as they go.
"""

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import Poll

WEEK: Final = timedelta(weeks=1)
_PARENT: Final = Poll.__tablename__
_KEY: Final = ", ".join(column.name for column in Poll.__table__.primary_key)
_NAME: Final = re.compile(rf"{_PARENT}_(\d{{8}})")
_PARTITIONS: Final = sa.text(
    "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid "
    "WHERE i.inhparent = CAST(:parent AS regclass)"
)
# The weeks' tables made ahead and not attached yet (empty: a load attaches what it fills).
_MADE_AHEAD: Final = sa.text(
    "SELECT c.relname FROM pg_class AS c "
    "WHERE c.relnamespace = CAST(current_schema() AS regnamespace) AND c.relkind = 'r' "
    "AND NOT c.relispartition AND c.relname ~ :pattern"
)


def week_start(instant: datetime) -> date:
    """The Monday (UTC) of the week holding `instant`."""
    day = instant.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def partition_name(monday: date) -> str:
    return f"{_PARENT}_{monday:%Y%m%d}"


def is_poll_partition(name: str) -> bool:
    """Whether `name` is a table this module makes (Alembic's comparisons leave them out)."""
    return _NAME.fullmatch(name) is not None


async def poll_partitions(session: AsyncSession) -> list[date]:
    """The Mondays of the weeks `polls` has a partition for, in order."""
    return _mondays(await session.scalars(_PARTITIONS, {"parent": _PARENT}))


async def poll_weeks_made_ahead(session: AsyncSession) -> list[date]:
    """The Mondays of the weeks whose table is made ahead and not attached yet, in order."""
    names = await session.scalars(_MADE_AHEAD, {"pattern": f"^{_NAME.pattern}$"})
    return _mondays(names)


async def make_poll_weeks_ahead(
    session: AsyncSession, *, start: datetime, through: datetime
) -> list[date]:
    """Make, empty and not attached, the tables of the weeks from the one holding `start` to
    the one holding `through` that have neither a partition nor a table made ahead; the Mondays
    of those made. A week's first load fills and attaches its table."""
    wanted = set(_weeks_between(start, through))

    async def made() -> set[date]:
        return set(await poll_partitions(session)) | set(await poll_weeks_made_ahead(session))

    if wanted.issubset(await made()):
        return []
    # Taking turns with the loads, which attach these tables; again under the lock.
    await session.execute(sa.text(f"LOCK TABLE {_PARENT} IN SHARE UPDATE EXCLUSIVE MODE"))
    missing = sorted(wanted - await made())
    for monday in missing:
        await _create_week_table(session, monday)
    return missing


async def ensure_poll_weeks(session: AsyncSession, mondays: Iterable[date]) -> list[date]:
    """Create the partitions of these weeks (Mondays) that do not exist yet; those created."""
    created = await create_poll_weeks(session, mondays)
    await attach_poll_weeks(session, created)
    return created


async def create_poll_weeks(session: AsyncSession, mondays: Iterable[date]) -> list[date]:
    """The empty, not yet attached tables of the weeks (Mondays) that have no partition, made
    now or ahead (`make_poll_weeks_ahead`); each to be attached by `attach_poll_weeks` in this
    transaction.

    Filled before they are attached, their primary key is built in one sort rather than row by
    row: a load into a new week runs about a third faster. Takes the SHARE UPDATE EXCLUSIVE lock
    on `polls` that ATTACH needs, which reports reading and loads writing it do not wait for,
    and which makes concurrent callers take turns, so each sees the weeks the other made.
    """
    wanted = set(mondays)
    if not wanted or wanted.issubset(await poll_partitions(session)):
        return []
    await session.execute(sa.text(f"LOCK TABLE {_PARENT} IN SHARE UPDATE EXCLUSIVE MODE"))
    # Again under the lock: another caller may have made some meanwhile.
    missing = sorted(wanted - set(await poll_partitions(session)))
    ahead = set(await poll_weeks_made_ahead(session))
    for monday in missing:
        if monday not in ahead:
            await _create_week_table(session, monday)
    return missing


async def attach_poll_weeks(session: AsyncSession, mondays: Iterable[date]) -> None:
    """Attach the weeks' tables made by `create_poll_weeks`, filled or not, as partitions:
    their primary key is built in one sort; their check constraint has kept out every poll of
    another week, so ATTACH need not scan them."""
    mondays = list(mondays)
    if mondays:
        # The sort of a week's million polls in memory, not spilled to disk (the default is 64MB);
        # until the caller's transaction ends.
        await session.execute(sa.text("SET LOCAL maintenance_work_mem = '256MB'"))
    for monday in mondays:
        name = partition_name(monday)
        await session.execute(
            sa.text(f"ALTER TABLE {name} ADD CONSTRAINT {name}_pkey PRIMARY KEY ({_KEY})")
        )
        await session.execute(
            sa.text(
                f"ALTER TABLE {_PARENT} ATTACH PARTITION {name} "
                f"FOR VALUES FROM ({_bound(monday)}) TO ({_end(monday)})"
            )
        )
        # The partition's own bounds say the same from now on.
        await session.execute(sa.text(f"ALTER TABLE {name} DROP CONSTRAINT {name}_week"))


async def ensure_poll_partitions(
    session: AsyncSession, *, start: datetime, through: datetime
) -> list[date]:
    """Create the missing partitions of every week from the one holding `start` to the one
    holding `through`, both included; the Mondays of those created."""
    return await ensure_poll_weeks(session, _weeks_between(start, through))


async def drop_poll_partitions_before(session: AsyncSession, cutoff: datetime) -> list[date]:
    """Drop the partitions whose whole week is before `cutoff` (a partition holding `cutoff`
    or anything after it stays): their polls go at once, without a DELETE. Their Mondays.
    Tables made ahead for such weeks and never filled go too."""
    # A week before the cut-off's own week ends at or before the cut-off.
    cutoff_week = week_start(cutoff)
    dropped = [monday for monday in await poll_partitions(session) if monday < cutoff_week]
    unused = [monday for monday in await poll_weeks_made_ahead(session) if monday < cutoff_week]
    for monday in dropped + unused:
        # A partition's takes an ACCESS EXCLUSIVE lock on `polls` until the caller commits:
        # keep that short.
        await session.execute(sa.text(f"DROP TABLE {partition_name(monday)}"))
    return dropped


async def _create_week_table(session: AsyncSession, monday: date) -> None:
    """The week's table, empty and not attached."""
    name = partition_name(monday)
    # LIKE copies the columns with their types, collations and NOT NULL, no index. The check,
    # the partition's bounds, lets ATTACH skip its scan of the rows.
    lower = f"timestamp_utc >= {_bound(monday)}"
    within = lower if _end(monday) == "MAXVALUE" else f"{lower} AND timestamp_utc < {_end(monday)}"
    await session.execute(
        sa.text(f"CREATE TABLE {name} (LIKE {_PARENT}, CONSTRAINT {name}_week CHECK ({within}))")
    )


def _weeks_between(start: datetime, through: datetime) -> list[date]:
    """The Mondays of the weeks from the one holding `start` to the one holding `through`."""
    first, last = week_start(start), week_start(through)
    return [first + week * WEEK for week in range((last - first) // WEEK + 1)]


def _mondays(names: Iterable[str]) -> list[date]:
    """The Mondays of the weeks' tables among `names`, in order."""
    return sorted(
        date(int(found[1][:4]), int(found[1][4:6]), int(found[1][6:]))
        for name in names
        if (found := _NAME.fullmatch(name))
    )


def _bound(monday: date) -> str:
    """A partition bound: that Monday 00:00 UTC, as a literal."""
    return f"'{monday.isoformat()} 00:00:00+00'"


def _end(monday: date) -> str:
    """The upper bound of the week of `monday`: the next Monday, or MAXVALUE for the last week
    a date can name (year 9999)."""
    return "MAXVALUE" if monday > date.max - WEEK else _bound(monday + WEEK)
