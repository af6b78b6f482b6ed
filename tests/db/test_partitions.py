"""Polls partitioned by week (Postgres): each poll in its week's partition, partitions made
ahead and dropped by retention, idempotent ingest across weeks, reports reading only the
partitions they need."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from store_monitor.db import report_inputs
from store_monitor.db.models import Base
from store_monitor.db.partitions import (
    ensure_poll_partitions,
    partition_name,
    poll_partitions,
    poll_weeks_made_ahead,
)
from store_monitor.db.session import create_engine
from store_monitor.frames import POLLS
from store_monitor.ingest import IngestResult, ingest_polls
from store_monitor.maintenance import PollPartitionChanges, maintain_poll_partitions

from .frames import at, polls, stored_polls

# Weeks of 2031, far from the 2023 polls other tests commit into the same database.
ACROSS_WEEKS = polls(
    ("1", "2031-03-02 23:59:59.999999", "active"),  # Sunday: the week of Monday 2031-02-24
    ("1", "2031-03-03 00:00:00", "inactive"),  # Monday 00:00: the next week's first instant
    ("2", "2031-03-12 08:00:00", "active"),
    ("2", "2031-03-19 08:00:00", "inactive"),
)
ACROSS_WEEKS_MONDAYS = [date(2031, 2, 24), date(2031, 3, 3), date(2031, 3, 10), date(2031, 3, 17)]


@pytest.fixture
async def sessionmaker(postgres_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on one Postgres connection in a transaction rolled back after the test (the
    partitions made or dropped too), on tables emptied at its start; their own transactions
    are savepoints."""
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(table.delete())
            yield async_sessionmaker(
                bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
            )
            await transaction.rollback()
    finally:
        await engine.dispose()


@pytest.fixture
async def session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


async def partitions_of_polls(session: AsyncSession) -> pl.DataFrame:
    """Each stored poll with the partition that holds it."""
    rows = await session.execute(
        sa.text("SELECT tableoid::regclass::text, store_id, timestamp_utc FROM polls")
    )
    return pl.DataFrame(
        rows.all(),
        schema={
            "partition": pl.String,
            "store_id": pl.String,
            "timestamp_utc": POLLS["timestamp_utc"],
        },
        orient="row",
    ).sort("store_id", "timestamp_utc")


async def test_each_poll_goes_to_its_weeks_partition(session: AsyncSession) -> None:
    result = await ingest_polls(session, ACROSS_WEEKS)

    assert result == IngestResult(received=4, added=4, stores=2)
    assert_frame_equal(await stored_polls(session), ACROSS_WEEKS.sort(POLLS.names()))
    placed = await partitions_of_polls(session)
    assert placed["partition"].to_list() == [
        "polls_20310224",
        "polls_20310303",
        "polls_20310310",
        "polls_20310317",
    ]
    assert set(ACROSS_WEEKS_MONDAYS) <= set(await poll_partitions(session))


async def test_reingesting_across_weeks_adds_nothing(session: AsyncSession) -> None:
    await ingest_polls(session, ACROSS_WEEKS)
    await session.commit()

    again = await ingest_polls(session, ACROSS_WEEKS)

    assert again == IngestResult(received=4, added=0, stores=2)
    assert_frame_equal(await stored_polls(session), ACROSS_WEEKS.sort(POLLS.names()))


async def test_a_load_into_stored_and_new_weeks_adds_only_the_new_polls(
    session: AsyncSession,
) -> None:
    await ingest_polls(session, ACROSS_WEEKS)
    await session.commit()
    more = polls(
        ("1", "2031-03-03 00:00:00", "inactive"),  # stored already
        ("1", "2031-03-04 00:00:00", "active"),  # a week with a partition
        ("3", "2031-04-01 12:00:00", "active"),  # a week without one
        ("3", "2031-04-01 12:00:00", "active"),  # repeated within the file
    )

    result = await ingest_polls(session, more)

    assert result == IngestResult(received=4, added=2, stores=2)
    expected = pl.concat([ACROSS_WEEKS, more.slice(1, 2)]).sort(POLLS.names())
    assert_frame_equal(await stored_polls(session), expected)
    assert (await partitions_of_polls(session))["partition"].to_list()[-1] == "polls_20310331"


async def test_polls_of_the_last_week_a_date_can_name_are_stored(session: AsyncSession) -> None:
    last = polls(("1", "9999-12-31 23:59:59.999999", "active"))

    await ingest_polls(session, last)

    assert_frame_equal(await stored_polls(session), last)
    assert (await partitions_of_polls(session))["partition"].to_list() == ["polls_99991227"]


async def test_partitions_are_made_ahead_once(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    now = at("2031-06-04 15:00:00")  # a Wednesday

    first = await maintain_poll_partitions(sessionmaker, now=now, retention_days=None)
    again = await maintain_poll_partitions(sessionmaker, now=now, retention_days=None)

    mondays = [date(2031, 6, 2), date(2031, 6, 9), date(2031, 6, 16)]
    assert first == PollPartitionChanges(created=mondays, dropped=[])
    assert again == PollPartitionChanges(created=[], dropped=[])
    async with sessionmaker() as session:
        assert set(mondays) <= set(await poll_weeks_made_ahead(session))
        # The polls of a week made ahead go into it, which the load attaches with its key.
        week = [("1", "2031-06-20 10:00:00", "active"), ("2", "2031-06-21 10:00:00", "active")]
        assert (await ingest_polls(session, polls(*week))).added == 2
        placed = await partitions_of_polls(session)
        assert placed["partition"].to_list() == ["polls_20310616", "polls_20310616"]
        assert date(2031, 6, 16) in await poll_partitions(session)
        assert date(2031, 6, 16) not in await poll_weeks_made_ahead(session)
        # Attached, the week takes later loads as any other, each poll once.
        again_and_more = polls(*week, ("3", "2031-06-22 10:00:00", "inactive"))
        assert (await ingest_polls(session, again_and_more)).added == 1
        assert_frame_equal(await stored_polls(session), again_and_more)
    assert (await maintain_poll_partitions(sessionmaker, now=now, retention_days=None)) == again


async def test_retention_drops_only_whole_weeks_before_the_cutoff(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as session:
        await ingest_polls(session, ACROSS_WEEKS)
    now = at("2031-03-20 12:00:00")
    # Cut-off 2031-03-06 12:00, inside the week of 2031-03-03: that week stays whole, with its
    # polls before the cut-off; the week of 2031-02-24 ended before it and goes.

    changes = await maintain_poll_partitions(sessionmaker, now=now, retention_days=14)

    assert date(2031, 2, 24) in changes.dropped
    assert all(monday < date(2031, 3, 3) for monday in changes.dropped)
    assert date(2031, 3, 24) in changes.created
    async with sessionmaker() as session:
        assert_frame_equal(await stored_polls(session), ACROSS_WEEKS.slice(1).sort(POLLS.names()))
        kept = await poll_partitions(session)
        assert kept[0] == date(2031, 3, 3)
        assert date(2031, 3, 24) in await poll_weeks_made_ahead(session)  # the coming weeks


async def test_retention_drops_the_tables_made_ahead_for_weeks_past_it(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # Made ahead of weeks whose polls never came.
    await maintain_poll_partitions(sessionmaker, now=at("2031-05-07 12:00:00"), retention_days=None)

    changes = await maintain_poll_partitions(
        sessionmaker, now=at("2031-06-11 12:00:00"), retention_days=14
    )

    # Those tables go, but were no weeks of polls.
    assert not {date(2031, 5, 5), date(2031, 5, 12), date(2031, 5, 19)} & set(changes.dropped)
    async with sessionmaker() as session:
        ahead = await poll_weeks_made_ahead(session)
    assert not {date(2031, 5, 5), date(2031, 5, 12), date(2031, 5, 19)} & set(ahead)
    assert {date(2031, 6, 9), date(2031, 6, 16), date(2031, 6, 23)} <= set(ahead)


async def test_without_retention_nothing_is_dropped(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as session:
        await ingest_polls(session, ACROSS_WEEKS)

    changes = await maintain_poll_partitions(
        sessionmaker, now=at("2040-01-01 00:00:00"), retention_days=None
    )

    assert changes.dropped == []
    async with sessionmaker() as session:
        assert (await stored_polls(session)).height == ACROSS_WEEKS.height


async def test_a_retention_shorter_than_a_report_week_is_refused(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(ValueError, match="retention_days"):
        await maintain_poll_partitions(
            sessionmaker, now=at("2031-01-01 00:00:00"), retention_days=6
        )


async def partition_names(session: AsyncSession) -> set[str]:
    return {partition_name(monday) for monday in await poll_partitions(session)}


def executed_relations(plan: dict[str, Any]) -> set[str]:
    """The tables and indexes an EXPLAIN (ANALYZE, FORMAT JSON) plan node and its children
    read at least once (a partition pruned at run time shows "never executed": no loops)."""
    found = set()
    if plan.get("Actual Loops", 0) > 0 and "Relation Name" in plan:
        found.add(plan["Relation Name"])
    for child in plan.get("Plans", []):
        found |= executed_relations(child)
    return found


async def test_the_report_reads_only_the_partitions_of_its_week_and_of_the_last_polls_before(
    session: AsyncSession,
) -> None:
    now = "2031-03-26 12:00:00"  # the week: from 2031-03-19 12:00, in the weeks of 03-17 and 03-24
    await ingest_polls(
        session,
        polls(
            ("a", "2030-09-02 10:00:00", "active"),  # a's first poll, long before
            ("a", "2031-03-05 10:00:00", "inactive"),  # a's last before the week
            ("a", "2031-03-20 10:00:00", "active"),
            ("b", "2031-03-25 10:00:00", "active"),  # b: new in the week, nothing before
            ("c", "2030-12-01 10:00:00", "inactive"),  # c: silent since, only this poll
            ("d", now, "active"),
        ),
    )
    # Empty weeks between them all: the look-ups must not walk through them.
    await ensure_poll_partitions(session, start=at("2030-09-02 00:00:00"), through=at(now))

    plan = await session.scalar(
        sa.text(f"EXPLAIN (ANALYZE, FORMAT JSON) {report_inputs._POSTGRES_INPUTS.text}"),
        {
            "as_of": at(now),
            "from_store": None,
            "to_store": None,
            "count_later": True,
            "store_ids": None,
            "window_ids": None,
            "window_starts": None,
            "default_since": None,
            "with_hours": True,
        },
    )
    tree = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
    read = {name for name in executed_relations(tree) if name.startswith("polls_")}

    # The week's two partitions, a's backwards from the week down to its last poll before the
    # week, and c's one poll; never a's first poll's week nor the empty weeks in between.
    assert read == {
        partition_name(date(2031, 3, 24)),
        partition_name(date(2031, 3, 17)),
        partition_name(date(2031, 3, 10)),
        partition_name(date(2031, 3, 3)),
        partition_name(date(2030, 11, 25)),
    }
    assert partition_name(date(2030, 9, 2)) in await partition_names(session)


async def test_two_loads_into_one_new_week_at_once_both_store_their_polls(
    postgres_url: str,
) -> None:
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    makers = async_sessionmaker(engine, expire_on_commit=False)
    first = polls(("x1", "2033-05-04 10:00:00", "active"))
    second = polls(("x1", "2033-05-04 10:00:00", "active"), ("x2", "2033-05-04 11:00:00", "active"))

    async def load(frame: pl.DataFrame) -> IngestResult:
        async with makers.begin() as session:
            return await ingest_polls(session, frame)

    try:
        async with makers.begin() as session:
            assert (await ingest_polls(session, first)).added == 1
            # The second load waits for the first's lock on polls before it looks for the week.
            other = asyncio.create_task(load(second))
            async with asyncio.timeout(30):
                while True:
                    if await _waiting_for_polls(engine):
                        break
                    await asyncio.sleep(0.05)
        assert (await other).added == 1

        async with makers() as session:
            stored = await stored_polls(session)
            assert stored.filter(pl.col("store_id").is_in(["x1", "x2"])).height == 2
    finally:
        async with engine.begin() as connection:
            await connection.execute(sa.text("DELETE FROM stores WHERE store_id IN ('x1', 'x2')"))
            await connection.execute(sa.text("DROP TABLE IF EXISTS polls_20330502"))
        await engine.dispose()


async def _waiting_for_polls(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        waiting = await connection.scalar(
            sa.text(
                "SELECT count(*) FROM pg_locks "
                "WHERE NOT granted AND relation = CAST('polls' AS regclass) "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        )
    return bool(waiting)
