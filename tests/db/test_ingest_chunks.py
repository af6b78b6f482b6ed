"""Ingest of CSV files a chunk at a time: polls added once across chunks and against stored
polls, hours, zones and owners over chunks, errors located by the file's lines."""

import asyncio
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import Store
from store_monitor.frames import POLLS
from store_monitor.ingest import (
    HoursLoad,
    IngestResult,
    Load,
    OwnersLoad,
    PollsLoad,
    TimezonesLoad,
    ValueRefused,
    ingest_business_hours,
    ingest_polls,
    load_csv,
)
from store_monitor.sources import (
    SourceError,
    read_business_hours,
    read_owners,
    read_polls,
    read_timezones,
)

from .frames import at, hours, polls, stored_hours, stored_polls, stored_stores, stored_zones, zones
from .test_ingest import FIRST


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _load_by_chunks(
    load: Load[Any], read: Callable[..., pl.DataFrame], text: str, *, chunk_bytes: int = 1
) -> IngestResult:
    # chunk_bytes=1: every record is a chunk of its own, the bytes arriving 7 at a time.
    return await load_csv(
        load,
        _pieces(text.encode(), 7),
        name="f.csv",
        read=partial(read, name="f.csv"),
        chunk_bytes=chunk_bytes,
    )


async def test_polls_by_chunks_are_added_once_across_chunks(db_session: AsyncSession) -> None:
    text = (
        "store_id,status,timestamp_utc\n"
        "1,active,2023-01-22 12:09:39.388884 UTC\n"
        "2,active,2023-01-22T12:00:00.000001Z\n"
        "\n"
        "1,active,2023-01-22 12:09:39.388884 UTC\n"  # a repeat, in another chunk
        "1,inactive,2023-01-22 13:09:39 UTC\n"
    )
    result = await _load_by_chunks(PollsLoad(db_session), read_polls, text)

    assert result == IngestResult(received=4, added=3, stores=2)
    assert_frame_equal(await stored_polls(db_session), FIRST.sort(POLLS.names()))


async def test_a_stores_hours_split_over_chunks_all_stay(db_session: AsyncSession) -> None:
    await ingest_business_hours(db_session, hours(("a", 6, "01:00", "02:00")))
    text = (
        "store_id,dayOfWeek,start_time_local,end_time_local\n"
        "a,0,09:00,17:00\n"
        "b,0,10:00,12:00\n"
        "a,1,09:00,17:00\n"
        "a,0,09:00,17:00\n"  # a repeat, in another chunk: counted once
    )
    result = await _load_by_chunks(HoursLoad(db_session), read_business_hours, text)

    assert result == IngestResult(received=4, added=3, stores=2)
    assert_frame_equal(
        await stored_hours(db_session),
        hours(("a", 0, "09:00", "17:00"), ("a", 1, "09:00", "17:00"), ("b", 0, "10:00", "12:00")),
    )


async def test_a_later_chunks_time_zone_wins(db_session: AsyncSession) -> None:
    text = "store_id,timezone_str\na,Europe/Berlin\nc,Factory\na,UTC\n"
    result = await _load_by_chunks(TimezonesLoad(db_session), read_timezones, text)

    assert result == IngestResult(received=3, added=2, stores=2)
    assert_frame_equal(await stored_zones(db_session), zones(("a", "UTC"), ("c", "Factory")))


async def test_an_owners_stores_split_over_chunks_all_stay(db_session: AsyncSession) -> None:
    text = "owner_id,store_id\no1,a\no2,b\no1,c\no1,a\n"
    result = await _load_by_chunks(OwnersLoad(db_session), read_owners, text)

    assert result == IngestResult(received=4, added=3, stores=3)
    stored = await db_session.execute(sa.text("SELECT owner_id, store_id FROM store_owners"))
    assert sorted(map(tuple, stored)) == [("o1", "a"), ("o1", "c"), ("o2", "b")]


async def test_a_bad_row_in_the_last_chunk_is_named_by_its_line_and_stores_nothing(
    db_session: AsyncSession,
) -> None:
    await ingest_polls(db_session, FIRST)
    await db_session.commit()
    good = "".join(f"3,active,2023-01-2{day} 00:00:00 UTC\n" for day in range(3, 10))
    quoted = '4,"active\n",2023-01-23 00:00:00 UTC\n'
    text = "store_id,status,timestamp_utc\n" + quoted + good + "\n" + "5,up,2023-01-23\n"

    with pytest.raises(SourceError) as excinfo:
        await _load_by_chunks(PollsLoad(db_session), read_polls, text, chunk_bytes=40)
    await db_session.rollback()

    assert (
        excinfo.value.message
        == "f.csv, line 12, column 'status': 'up' is not 'active' or 'inactive'"
    )
    assert_frame_equal(await stored_polls(db_session), FIRST.sort(POLLS.names()))
    assert await stored_stores(db_session) == ["1", "2"]


async def test_polls_stored_before_are_skipped_in_every_chunk(db_session: AsyncSession) -> None:
    await ingest_polls(db_session, FIRST)
    await db_session.commit()
    text = (
        "store_id,status,timestamp_utc\n"
        "2,active,2023-01-22T12:00:00.000001Z\n"  # stored before
        "1,active,2023-01-22 12:30:00 UTC\n"  # new, inside 1's stored span
        "1,inactive,2023-01-22 13:09:39 UTC\n"  # stored before, in a later chunk
        "1,active,2023-01-22 12:30:00 UTC\n"  # added by an earlier chunk
    )
    result = await _load_by_chunks(PollsLoad(db_session), read_polls, text)

    assert result == IngestResult(received=4, added=1, stores=2)
    assert (await stored_polls(db_session)).height == 4


async def test_a_poll_repeated_far_apart_is_added_once_into_old_and_new_weeks(
    db_session: AsyncSession,
) -> None:
    # FIRST's week (of 2023-01-16) is stored; the weeks of 2023-01-02 and 2023-01-30 are not.
    await ingest_polls(db_session, FIRST)
    await db_session.commit()
    text = (
        "store_id,status,timestamp_utc\n"
        "3,active,2023-01-02 00:00:00 UTC\n"  # a new week
        "1,active,2023-01-21 00:00:00 UTC\n"  # a late poll into a stored week
        "3,inactive,2023-01-31 00:00:00 UTC\n"  # another new week
        "1,active,2023-01-22 12:09:39.388884 UTC\n"  # stored before
        "1,active,2023-01-21 00:00:00 UTC\n"  # an earlier chunk's, beside a new poll
        "1,active,2023-01-21 01:00:00 UTC\n"
        "3,active,2023-01-02 00:00:00 UTC\n"  # an earlier chunk's, in a new week
        "3,inactive,2023-01-31 00:00:00 UTC\n"  # and in the other
    )
    result = await _load_by_chunks(PollsLoad(db_session), read_polls, text, chunk_bytes=70)
    await db_session.commit()

    assert result == IngestResult(received=8, added=4, stores=2)
    expected = pl.concat(
        [
            FIRST,
            polls(
                ("1", "2023-01-21 00:00:00", "active"),
                ("1", "2023-01-21 01:00:00", "active"),
                ("3", "2023-01-02 00:00:00", "active"),
                ("3", "2023-01-31 00:00:00", "inactive"),
            ),
        ]
    )
    assert_frame_equal(await stored_polls(db_session), expected.sort(POLLS.names()))
    assert await ingest_polls(db_session, expected) == IngestResult(received=7, added=0, stores=3)


async def test_stores_spans_follow_polls_of_every_chunk(db_session: AsyncSession) -> None:
    await ingest_polls(db_session, FIRST)
    text = (
        "store_id,status,timestamp_utc\n"
        "1,active,2023-01-22 12:30:00 UTC\n"  # inside 1's span: no change
        "3,active,2023-01-10 00:00:00 UTC\n"
        "1,active,2023-01-25 00:00:00 UTC\n"  # 1's new latest
        "3,active,2023-01-05 00:00:00 UTC\n"  # 3's first, in a later chunk
        "1,active,2023-01-20 00:00:00 UTC\n"  # 1's new first
        "3,active,2023-01-12 00:00:00 UTC\n"  # 3's latest
    )
    await _load_by_chunks(PollsLoad(db_session), read_polls, text)

    spans = await db_session.execute(
        sa.select(Store.store_id, Store.first_poll_at, Store.latest_poll_at).order_by(
            Store.store_id
        )
    )
    assert spans.all() == [
        ("1", at("2023-01-20 00:00:00"), at("2023-01-25 00:00:00")),
        ("2", at("2023-01-22 12:00:00.000001"), at("2023-01-22 12:00:00.000001")),
        ("3", at("2023-01-05 00:00:00"), at("2023-01-12 00:00:00")),
    ]


class _RefusingLoad(Load[pl.DataFrame]):
    """Refuses its first frame, as the database refuses a value."""

    def prepare(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame

    async def add(self, prepared: pl.DataFrame) -> None:
        await asyncio.sleep(0.05)  # the next chunk's read has failed by now
        raise ValueRefused("polls", "refused")

    async def finish(self) -> None:
        raise AssertionError("a failed load is not finished")

    def result(self) -> IngestResult:
        raise AssertionError("a failed load has no result")


async def test_an_earlier_chunks_error_wins_over_the_next_chunks_read_meanwhile(
    db_session: AsyncSession,
) -> None:
    text = "store_id,status,timestamp_utc\n1,active,2023-01-22 12:00:00 UTC\n5,up,2023-01-23\n"

    with pytest.raises(ValueRefused):
        await _load_by_chunks(_RefusingLoad(db_session), read_polls, text)


class _SlowFirstLoad(Load[pl.DataFrame]):
    """Adds its first frame only once `arrived` is set: by then the file was read further."""

    def __init__(self, session: AsyncSession, arrived: asyncio.Event) -> None:
        super().__init__(session)
        self.arrived = arrived

    def prepare(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame

    async def add(self, prepared: pl.DataFrame) -> None:
        if self.received == 0:
            # Not a timing: a guard against waiting forever if the reading stops meanwhile.
            await asyncio.wait_for(self.arrived.wait(), timeout=60)
        self.received += prepared.height

    async def finish(self) -> None:
        pass

    def result(self) -> IngestResult:
        return IngestResult(received=self.received, added=0, stores=0)


async def test_the_bytes_after_the_next_chunk_arrive_while_a_chunk_is_added(
    db_session: AsyncSession,
) -> None:
    rows = [f"{store},active,2023-01-22 12:00:00 UTC\n".encode() for store in range(4)]
    arrived = asyncio.Event()

    async def blocks() -> AsyncIterator[bytes]:
        yield b"store_id,status,timestamp_utc\n" + rows[0]
        yield rows[1]
        arrived.set()  # the third chunk's bytes are asked for
        for row in rows[2:]:
            yield row

    load = _SlowFirstLoad(db_session, arrived)
    result = await load_csv(
        load, blocks(), name="f.csv", read=partial(read_polls, name="f.csv"), chunk_bytes=1
    )

    assert result.received == 4


async def test_an_earlier_chunks_error_wins_over_a_later_line_too_long(
    db_session: AsyncSession,
) -> None:
    text = (
        "store_id,status,timestamp_utc\n"
        "1,active,2023-01-22 12:00:00 UTC\n"
        "5,up,2023-01-23\n"
        "1," + "y" * (2 << 20) + "\n"
    )

    with pytest.raises(SourceError) as excinfo:
        await load_csv(
            PollsLoad(db_session),
            _pieces(text.encode(), 1 << 20),
            name="f.csv",
            read=partial(read_polls, name="f.csv"),
            chunk_bytes=1,
        )

    assert excinfo.value.line == 3


async def test_a_body_cut_short_after_chunks_were_added_raises_and_stores_nothing(
    db_session: AsyncSession,
) -> None:
    await ingest_polls(db_session, FIRST)
    await db_session.commit()
    rows = [f"{store},active,2023-01-22 12:00:00 UTC\n".encode() for store in range(3, 9)]

    async def blocks() -> AsyncIterator[bytes]:
        yield b"store_id,status,timestamp_utc\n"
        for row in rows:
            yield row
        raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        await load_csv(
            PollsLoad(db_session),
            blocks(),
            name="f.csv",
            read=partial(read_polls, name="f.csv"),
            chunk_bytes=1,
        )
    await db_session.rollback()

    assert_frame_equal(await stored_polls(db_session), FIRST.sort(POLLS.names()))
    assert await stored_stores(db_session) == ["1", "2"]
