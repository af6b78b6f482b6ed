"""Ingest: polls are added once however often they come; hours and zones are replaced per
store; a load that fails part-way leaves what was stored before."""

from datetime import time

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import Store
from store_monitor.frames import BUSINESS_HOURS, POLLS, TIMEZONES
from store_monitor.ingest import (
    IngestResult,
    ValueRefused,
    ingest_business_hours,
    ingest_polls,
    ingest_timezones,
)

from .frames import at, hours, polls, stored_hours, stored_polls, stored_stores, stored_zones, zones

FIRST = polls(
    ("1", "2023-01-22 12:09:39.388884", "active"),
    ("1", "2023-01-22 13:09:39", "inactive"),
    ("2", "2023-01-22 12:00:00.000001", "active"),
)


async def test_polls_are_stored_exactly(db_session: AsyncSession) -> None:
    result = await ingest_polls(db_session, FIRST)

    assert result == IngestResult(received=3, added=3, stores=2)
    assert_frame_equal(await stored_polls(db_session), FIRST.sort(POLLS.names()))
    assert await stored_stores(db_session) == ["1", "2"]


async def test_reingesting_polls_adds_nothing(db_session: AsyncSession) -> None:
    await ingest_polls(db_session, FIRST)
    await db_session.commit()

    again = await ingest_polls(db_session, FIRST)

    assert again == IngestResult(received=3, added=0, stores=2)
    assert (await stored_polls(db_session)).height == 3


async def test_overlapping_polls_add_only_the_new_ones(db_session: AsyncSession) -> None:
    await ingest_polls(db_session, FIRST)
    newer = polls(
        ("1", "2023-01-22 13:09:39", "inactive"),  # stored already
        ("1", "2023-01-22 14:00:00", "active"),
        ("1", "2023-01-22 14:00:00", "active"),  # repeated within the file
        ("3", "2023-01-22 12:30:00", "inactive"),
    )

    result = await ingest_polls(db_session, newer)

    assert result == IngestResult(received=4, added=2, stores=2)
    assert (await stored_polls(db_session)).height == 5
    assert await stored_stores(db_session) == ["1", "2", "3"]


async def test_stores_remember_their_latest_poll(db_session: AsyncSession) -> None:
    await ingest_polls(db_session, FIRST)
    await ingest_polls(
        db_session,
        polls(
            ("1", "2023-01-20 00:00:00", "active"),  # older than 1's latest: no change
            ("2", "2023-01-23 08:00:00.5", "inactive"),  # newer than 2's latest
            ("3", "2023-01-01 00:00:00", "active"),
        ),
    )

    latest = await db_session.execute(
        sa.select(Store.store_id, Store.latest_poll_at).order_by(Store.store_id)
    )
    assert latest.all() == [
        ("1", at("2023-01-22 13:09:39")),
        ("2", at("2023-01-23 08:00:00.5")),
        ("3", at("2023-01-01 00:00:00")),
    ]


async def test_stores_remember_their_first_poll(db_session: AsyncSession) -> None:
    await ingest_polls(db_session, FIRST)
    await ingest_polls(
        db_session,
        polls(
            ("1", "2023-01-20 00:00:00", "active"),  # older than 1's first: the new first
            ("2", "2023-01-23 08:00:00.5", "inactive"),  # newer than 2's first: no change
            ("3", "2023-01-01 00:00:00", "active"),
        ),
    )

    first = await db_session.execute(
        sa.select(Store.store_id, Store.first_poll_at).order_by(Store.store_id)
    )
    assert first.all() == [
        ("1", at("2023-01-20 00:00:00")),
        ("2", at("2023-01-22 12:00:00.000001")),
        ("3", at("2023-01-01 00:00:00")),
    ]


async def test_an_active_and_an_inactive_poll_at_one_instant_are_both_kept(
    db_session: AsyncSession,
) -> None:
    both = polls(("1", "2023-01-22 12:00:00", "active"), ("1", "2023-01-22 12:00:00", "inactive"))

    assert (await ingest_polls(db_session, both)).added == 2
    assert (await stored_polls(db_session)).height == 2


async def test_store_ids_are_opaque_text(db_session: AsyncSession) -> None:
    odd = polls(
        ("00123", "2023-01-22 12:00:00", "active"),
        ("123", "2023-01-22 12:00:00", "active"),
        ("9223372036854775808123", "2023-01-22 12:00:00", "active"),
        ("café ☕", "2023-01-22 12:00:00", "inactive"),
        ('a "quoted", id', "2023-01-22 12:00:00", "active"),
    )

    await ingest_polls(db_session, odd)

    assert_frame_equal(await stored_polls(db_session), odd.sort(POLLS.names()))


async def test_instants_far_from_now_survive(db_session: AsyncSession) -> None:
    # Before Postgres' own epoch (2000) its binary instants are negative.
    far = polls(
        ("1", "1970-01-01 00:00:00", "active"), ("1", "1999-12-31 23:59:59.999999", "active")
    )
    far = pl.concat([far, polls(("1", "2262-04-11 00:00:00", "inactive"))])

    await ingest_polls(db_session, far)

    assert_frame_equal(await stored_polls(db_session), far.sort(POLLS.names()))


async def test_a_frame_of_the_wrong_schema_is_refused(db_session: AsyncSession) -> None:
    with pytest.raises(TypeError):
        await ingest_polls(db_session, FIRST.with_columns(pl.col("status").cast(pl.String)))


async def test_business_hours_are_replaced_per_store(db_session: AsyncSession) -> None:
    await ingest_business_hours(
        db_session,
        hours(("a", 0, "09:00", "17:00"), ("a", 1, "09:00", "17:00"), ("b", 0, "10:00", "12:00")),
    )

    result = await ingest_business_hours(
        db_session,
        hours(
            ("a", 2, "08:00:00.5", "23:59:59"),
            ("a", 2, "08:00:00.5", "23:59:59"),  # a repeated row means nothing more
            ("c", 6, "22:00", "02:00"),
        ),
    )

    assert result == IngestResult(received=3, added=2, stores=2)
    assert_frame_equal(
        await stored_hours(db_session),
        hours(
            ("a", 2, "08:00:00.5", "23:59:59"),  # a's old days are gone: closed now
            ("b", 0, "10:00", "12:00"),  # not in the new file: kept
            ("c", 6, "22:00", "02:00"),
        ),
    )


async def test_timezones_are_replaced_per_store_the_last_row_winning(
    db_session: AsyncSession,
) -> None:
    await ingest_timezones(db_session, zones(("a", "America/Denver"), ("b", "Asia/Tokyo")))

    result = await ingest_timezones(
        db_session, zones(("a", "Europe/Berlin"), ("c", "Mars/Olympus_Mons"), ("a", "UTC"))
    )

    assert result == IngestResult(received=3, added=2, stores=2)
    assert_frame_equal(
        await stored_zones(db_session),
        zones(("a", "UTC"), ("b", "Asia/Tokyo"), ("c", "Mars/Olympus_Mons")),
    )


async def test_hours_and_zones_sent_again_write_nothing(db_session: AsyncSession) -> None:
    week = hours(("a", 0, "09:00", "17:00"), ("a", 1, "09:00", "17:00"), ("b", 0, "10:00", "12:00"))
    await ingest_business_hours(db_session, week)
    await ingest_timezones(db_session, zones(("a", "America/Denver"), ("b", "Asia/Tokyo")))
    before = await _row_places(db_session)

    # b's hours change; a's and both zones are the same again.
    again = hours(
        ("a", 1, "09:00", "17:00"), ("a", 0, "09:00", "17:00"), ("b", 0, "10:00", "13:00")
    )
    assert await ingest_business_hours(db_session, again) == IngestResult(
        received=3, added=3, stores=2
    )
    await ingest_timezones(db_session, zones(("b", "Asia/Tokyo"), ("a", "America/Denver")))

    after = await _row_places(db_session)
    # A row rewritten (deleted and inserted again) would be in a new place.
    assert {row: place for row, place in after.items() if row[0] != "hours b"} == {
        row: place for row, place in before.items() if row[0] != "hours b"
    }
    assert_frame_equal(await stored_hours(db_session), again.sort(BUSINESS_HOURS.names()))


async def _row_places(session: AsyncSession) -> dict[tuple[str, ...], str]:
    """Each stored hours and zone row, by its content, with its physical place (ctid)."""
    found = await session.execute(
        sa.text(
            "SELECT 'hours ' || store_id, day_of_week::text || start_time_local::text, ctid::text "
            "FROM business_hours UNION ALL "
            "SELECT 'zone ' || store_id, timezone_str, ctid::text FROM timezones"
        )
    )
    return {(kind, content): place for kind, content, place in found}


async def test_empty_frames_change_nothing(db_session: AsyncSession) -> None:
    await ingest_polls(db_session, FIRST)
    await ingest_business_hours(db_session, hours(("1", 0, "09:00", "17:00")))
    await ingest_timezones(db_session, zones(("1", "UTC")))

    assert await ingest_polls(db_session, POLLS.to_frame()) == IngestResult(
        received=0, added=0, stores=0
    )
    await ingest_business_hours(db_session, BUSINESS_HOURS.to_frame())
    await ingest_timezones(db_session, TIMEZONES.to_frame())

    assert (await stored_polls(db_session)).height == 3
    assert (await stored_hours(db_session)).height == 1
    assert (await stored_zones(db_session)).height == 1


async def test_a_failed_hours_load_leaves_the_old_hours(db_session: AsyncSession) -> None:
    before = hours(("a", 0, "09:00", "17:00"), ("b", 0, "10:00", "12:00"))
    await ingest_business_hours(db_session, before)
    await db_session.commit()
    # Store a's old rows are deleted before the insert fails on the null.
    broken = hours(("a", 1, "09:00", "17:00")).vstack(
        pl.DataFrame([("b", 1, None, time(12))], schema=BUSINESS_HOURS, orient="row")
    )

    with pytest.raises(sa.exc.DBAPIError):
        await ingest_business_hours(db_session, broken)
    await db_session.rollback()

    assert_frame_equal(await stored_hours(db_session), before)


async def test_a_failed_polls_load_leaves_the_old_polls_and_stores(
    db_session: AsyncSession,
) -> None:
    await ingest_polls(db_session, FIRST)
    await db_session.commit()
    # The new stores are written before the polls, which fail on the null.
    broken = polls(("3", "2023-01-23 00:00:00", "active")).vstack(
        pl.DataFrame([("4", None, "active")], schema=POLLS, orient="row")
    )

    with pytest.raises((sa.exc.DBAPIError, ValueError)):
        await ingest_polls(db_session, broken)
    await db_session.rollback()

    assert_frame_equal(await stored_polls(db_session), FIRST.sort(POLLS.names()))
    assert await stored_stores(db_session) == ["1", "2"]


async def test_a_value_the_database_refuses_is_named_by_its_row(db_session: AsyncSession) -> None:
    # The readers refuse such values first; this is the guard behind them: a 4xx, not a 500.
    before = zones(("a", "UTC"))
    await ingest_timezones(db_session, before)
    await db_session.commit()

    with pytest.raises(ValueRefused) as excinfo:
        await ingest_timezones(db_session, zones(("a", "Asia/Tokyo"), ("b", "Europe/\x00Paris")))
    await db_session.rollback()

    error = excinfo.value
    assert (error.table, error.store_id) == ("timezones", "b")
    assert "0x00" in error.reason
    assert str(error).startswith("timezones: the database refused a value (the row of store 'b')")
    assert "COPY" not in str(error)
    assert_frame_equal(await stored_zones(db_session), before)


async def test_a_refused_store_id_is_a_refused_value_too(db_session: AsyncSession) -> None:
    with pytest.raises(ValueRefused) as excinfo:
        await ingest_polls(db_session, polls(("a\x00b", "2023-01-22 12:00:00", "active")))
    await db_session.rollback()
    assert excinfo.value.table == "polls"
    assert await stored_stores(db_session) == []
