"""Report data: the engine's inputs read back (only what the report needs, from one snapshot),
and report rows, incidents and days stored and read back or streamed as the CLI's CSVs."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from store_monitor import report_runs
from store_monitor.db.models import (
    BusinessHours,
    Poll,
    Report,
    ReportDay,
    ReportIncident,
    ReportRow,
    Store,
    Timezone,
)
from store_monitor.db.report_inputs import StoreRange, load_report_inputs
from store_monitor.db.report_results import (
    replace_report_results,
    report_daily_csv,
    report_incidents_csv,
    report_rows,
)
from store_monitor.db.session import create_sessionmaker
from store_monitor.engine import compute_report
from store_monitor.formats import daily_csv_bytes, incidents_csv_bytes, report_csv_bytes
from store_monitor.frames import BUSINESS_HOURS, DAILY, INCIDENTS, POLLS, REPORT, TIMEZONES
from store_monitor.ingest import ingest_business_hours, ingest_polls, ingest_timezones
from store_monitor.reports import delete_report
from store_monitor.sources import read_business_hours, read_polls, read_timezones
from store_monitor.synthetic import generate
from store_monitor.work.lease import Runner
from support.work import RecordingQueue, create_report

from .frames import at, hours, polls, zones

NOW = "2023-01-25 12:00:00"
WEEK_START = "2023-01-18 12:00:00"


def sorted_polls(frame: pl.DataFrame) -> pl.DataFrame:
    """Schema POLLS in one order (a read's stores are an Enum: here their texts)."""
    return frame.with_columns(pl.col("store_id").cast(pl.String)).sort(POLLS.names())


def assert_read_polls_schema(frame: pl.DataFrame) -> None:
    """POLLS but for the stores, codes of an Enum of their ids: 2 or 4 bytes a poll, not 16."""
    assert isinstance(frame.schema["store_id"], pl.Enum)
    assert sorted_polls(frame).schema == POLLS


async def test_no_polls_no_now(db_session: AsyncSession) -> None:
    inputs = await load_report_inputs(db_session, as_of=None)

    assert inputs.now is None
    assert inputs.ignored_polls == 0
    assert_read_polls_schema(inputs.polls)
    assert inputs.business_hours.schema == BUSINESS_HOURS
    assert inputs.timezones.schema == TIMEZONES
    assert inputs.polls.height == inputs.business_hours.height == inputs.timezones.height == 0

    asked = await load_report_inputs(db_session, as_of=at(NOW))
    assert asked.now == at(NOW)
    assert asked.polls.height == 0


async def test_the_week_and_each_stores_last_poll_before_it(db_session: AsyncSession) -> None:
    await ingest_polls(
        db_session,
        polls(
            ("a", "2023-01-01 10:00:00", "active"),
            ("a", "2023-01-05 09:00:00", "inactive"),  # a's last before the week
            ("a", "2023-01-20 12:00:00", "active"),
            ("b", NOW, "active"),  # the latest poll: now
            ("c", "2023-01-02 08:00:00", "active"),  # c has only old polls: still reported
            ("c", "2023-01-03 08:00:00", "inactive"),
            ("d", "2023-01-18 11:59:59.999999", "active"),
            ("d", WEEK_START, "inactive"),  # in the week, its first instant
        ),
    )

    inputs = await load_report_inputs(db_session, as_of=None)

    assert inputs.now == at(NOW)
    assert inputs.ignored_polls == 0
    assert_read_polls_schema(inputs.polls)
    assert_frame_equal(
        sorted_polls(inputs.polls),
        sorted_polls(
            polls(
                ("a", "2023-01-05 09:00:00", "inactive"),
                ("a", "2023-01-20 12:00:00", "active"),
                ("b", NOW, "active"),
                ("c", "2023-01-03 08:00:00", "inactive"),
                ("d", "2023-01-18 11:59:59.999999", "active"),
                ("d", WEEK_START, "inactive"),
            )
        ),
    )


async def test_a_tie_before_the_week_is_inactive(db_session: AsyncSession) -> None:
    await ingest_polls(
        db_session,
        polls(
            ("t", "2023-01-04 10:00:00", "inactive"),
            ("t", "2023-01-04 10:00:00", "active"),
            ("t", "2023-01-24 10:00:00", "active"),  # a tie in the week: both stay
            ("t", "2023-01-24 10:00:00", "inactive"),
            ("u", NOW, "active"),
        ),
    )

    inputs = await load_report_inputs(db_session, as_of=None)

    assert_frame_equal(
        sorted_polls(inputs.polls),
        sorted_polls(
            polls(
                ("t", "2023-01-04 10:00:00", "inactive"),
                ("t", "2023-01-24 10:00:00", "active"),
                ("t", "2023-01-24 10:00:00", "inactive"),
                ("u", NOW, "active"),
            )
        ),
    )


async def test_as_of_ends_the_week_and_counts_the_later_polls(db_session: AsyncSession) -> None:
    await ingest_polls(
        db_session,
        polls(
            ("a", "2023-01-20 12:00:00", "active"),
            ("a", "2023-01-21 00:00:00", "inactive"),  # at as_of: in
            ("a", "2023-01-21 00:00:00.000001", "active"),
            ("b", "2023-01-22 00:00:00", "active"),  # b's only poll is later: no row
        ),
    )

    inputs = await load_report_inputs(db_session, as_of=at("2023-01-21 00:00:00"))

    assert inputs.now == at("2023-01-21 00:00:00")
    assert inputs.ignored_polls == 2
    assert type(inputs.ignored_polls) is int
    assert_frame_equal(
        sorted_polls(inputs.polls),
        polls(("a", "2023-01-20 12:00:00", "active"), ("a", "2023-01-21 00:00:00", "inactive")),
    )


async def test_hours_and_zones_only_of_polled_stores(db_session: AsyncSession) -> None:
    await ingest_polls(
        db_session, polls(("a", NOW, "active"), ("late", "2023-01-30 00:00:00", "active"))
    )
    await ingest_business_hours(
        db_session,
        hours(
            ("a", 0, "09:00", "17:00"),
            ("never", 1, "09:00", "17:00"),
            ("late", 2, "09:00", "10:00"),
        ),
    )
    await ingest_timezones(
        db_session, zones(("a", "Asia/Tokyo"), ("never", "UTC"), ("late", "UTC"))
    )

    inputs = await load_report_inputs(db_session, as_of=at(NOW))

    assert_frame_equal(inputs.business_hours, hours(("a", 0, "09:00", "17:00")))
    assert_frame_equal(inputs.timezones, zones(("a", "Asia/Tokyo")))


async def test_every_part_of_each_store_comes_back_exactly(db_session: AsyncSession) -> None:
    # Ids of any text (none in byte order by chance), hours of several days and past midnight,
    # instants to the microsecond: each store's rows must stay with its id.
    ids = ["é", "a b", "x,y", '"q"', "new\nline", "", "10", "9"]
    week = [
        (store, f"2023-01-{20 + index % 5} {index:02}:00:00.{index:06}", status)
        for index, store in enumerate(ids)
        for status in ("active", "inactive")
    ]
    await ingest_polls(db_session, polls(*week, ("9", "2022-12-31 23:59:59.999999", "inactive")))
    await ingest_business_hours(
        db_session,
        hours(
            *(
                (store, index % 7, f"{index:02}:30", "02:15:00.5")
                for index, store in enumerate(ids)
            ),
            ("é", 6, "00:00", "23:59:59"),
        ),
    )
    await ingest_timezones(db_session, zones(*((store, f"Zone/{store}") for store in ids[::2])))

    inputs = await load_report_inputs(db_session, as_of=at(NOW))

    expected = polls(*week, ("9", "2022-12-31 23:59:59.999999", "inactive"))
    assert_frame_equal(sorted_polls(inputs.polls), sorted_polls(expected))
    assert_frame_equal(
        inputs.business_hours.sort(BUSINESS_HOURS.names()),
        hours(
            *(
                (store, index % 7, f"{index:02}:30", "02:15:00.5")
                for index, store in enumerate(ids)
            ),
            ("é", 6, "00:00", "23:59:59"),
        ).sort(BUSINESS_HOURS.names()),
    )
    assert_frame_equal(
        inputs.timezones.sort("store_id"),
        zones(*((store, f"Zone/{store}") for store in ids[::2])).sort("store_id"),
    )


async def test_a_naive_as_of_is_refused(db_session: AsyncSession) -> None:
    with pytest.raises(ValueError, match="aware"):
        await load_report_inputs(db_session, as_of=datetime(2023, 1, 25))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, ...]:
    # Ten days of polls: some before any week the tests ask for.
    files = generate(tmp_path_factory.mktemp("generated"), stores=25, days=10, seed=11)
    return (
        read_polls(files.store_status),
        read_business_hours(files.menu_hours),
        read_timezones(files.timezones),
    )


@pytest.mark.parametrize("hours_before_latest", [None, 0, 30, 24 * 4 + 7, 24 * 9, 24 * 12])
async def test_the_engine_on_the_loaded_inputs_gives_the_full_report(
    db_session: AsyncSession,
    generated: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame],
    hours_before_latest: int | None,
) -> None:
    all_polls, all_hours, all_zones = generated
    await ingest_polls(db_session, all_polls)
    await ingest_business_hours(db_session, all_hours)
    await ingest_timezones(db_session, all_zones)
    latest = all_polls["timestamp_utc"].max()
    assert isinstance(latest, datetime)
    as_of = None if hours_before_latest is None else latest - timedelta(hours=hours_before_latest)

    inputs = await load_report_inputs(db_session, as_of=as_of)
    loaded = compute_report(inputs.polls, inputs.business_hours, inputs.timezones, as_of=inputs.now)
    full = compute_report(all_polls, all_hours, all_zones, as_of=as_of)

    assert inputs.polls.height < all_polls.height
    assert inputs.now == full.now
    assert inputs.ignored_polls == full.ignored_polls
    assert loaded.unknown_timezones == full.unknown_timezones
    assert_frame_equal(loaded.rows, full.rows)


@pytest.mark.parametrize("hours_before_latest", [None, 30, 24 * 12])
async def test_a_fresh_session_reads_in_parts_what_a_transaction_reads_whole(
    db_engine: AsyncEngine,
    generated: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame],
    hours_before_latest: int | None,
) -> None:
    """On Postgres a session not yet in a transaction reads the stores in parts, on several
    connections sharing one snapshot; one in a transaction reads them in one statement."""
    sessions = create_sessionmaker(db_engine)
    all_polls, all_hours, all_zones = generated
    async with sessions.begin() as session:
        await ingest_polls(session, all_polls)
        await ingest_business_hours(session, all_hours)
        await ingest_timezones(session, all_zones)
    latest = all_polls["timestamp_utc"].max()
    assert isinstance(latest, datetime)
    as_of = None if hours_before_latest is None else latest - timedelta(hours=hours_before_latest)
    try:
        async with sessions() as session:
            assert not session.in_transaction()
            in_parts = await load_report_inputs(session, as_of=as_of)
        async with sessions() as session:
            await session.execute(sa.select(1))
            whole = await load_report_inputs(session, as_of=as_of)
    finally:
        ids = all_polls["store_id"].unique().to_list()
        async with sessions.begin() as session:
            for table in (Poll, Store, BusinessHours, Timezone):
                await session.execute(sa.delete(table).where(table.store_id.in_(ids)))

    assert (in_parts.now, in_parts.ignored_polls) == (whole.now, whole.ignored_polls)
    assert_frame_equal(sorted_polls(in_parts.polls), sorted_polls(whole.polls))
    assert_frame_equal(
        in_parts.business_hours.sort(BUSINESS_HOURS.names()),
        whole.business_hours.sort(BUSINESS_HOURS.names()),
    )
    assert_frame_equal(in_parts.timezones.sort("store_id"), whole.timezones.sort("store_id"))


async def test_a_load_reads_one_snapshot(db_engine: AsyncEngine) -> None:
    """While a writer keeps replacing a store's hours and zone together, every load sees
    both from the same commit."""
    sessions = create_sessionmaker(db_engine)
    days = ["Europe/Berlin", "Asia/Tokyo", "America/Denver"]  # zone i goes with day i
    async with sessions() as session:
        await ingest_polls(session, polls(("snapshot", NOW, "active")))
        await session.commit()
    done = asyncio.Event()

    async def write() -> None:
        for turn in range(30):
            day = turn % len(days)
            async with sessions() as session:
                await ingest_business_hours(session, hours(("snapshot", day, "09:00", "17:00")))
                await ingest_timezones(session, zones(("snapshot", days[day])))
                await session.commit()
            await asyncio.sleep(0)
        done.set()

    async def read() -> int:
        reads = 0
        while not done.is_set():
            async with sessions() as session:
                inputs = await load_report_inputs(session, as_of=None)
            reads += 1
            # Other tests may have left stores of their own in this database.
            mine = pl.col("store_id") == "snapshot"
            zone_rows = inputs.timezones.filter(mine)
            if zone_rows.height:
                zone = zone_rows["timezone_str"].item()
                day_rows = inputs.business_hours.filter(mine)
                assert day_rows["day_of_week"].to_list() == [days.index(zone)]
            await asyncio.sleep(0)
        return reads

    try:
        _, reads = await asyncio.gather(write(), read())
        assert reads > 1
    finally:
        async with sessions() as session:
            for table in ("polls", "stores", "business_hours", "timezones"):
                await session.execute(sa.text(f"DELETE FROM {table} WHERE store_id = 'snapshot'"))
            await session.commit()


def report_frame(*rows: tuple[str, float, float, float, float, float, float]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=REPORT, orient="row").sort("store_id")


# Ids whose text order differs from any locale's: byte order, as Polars and the engine sort.
ROWS = report_frame(
    ("b", 60.0, 24.0, 168.0, 0.0, 0.0, 0.0),
    ("a", 0.0, 1.74, 99.99, 60.0, 1.26, 12.5),
    ("B", 12.34, 0.01, 0.1, 47.66, 23.99, 167.9),
    ("é", 1.0, 2.0, 3.0, 4.0, 5.0, 6.0),
    ("10", 0.5, 0.25, 0.75, 59.5, 23.75, 167.25),
    ("9", 33.33, 3.33, 33.33, 26.67, 20.67, 134.67),
    ("ä", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
)


async def new_report(session: AsyncSession) -> UUID:
    report = Report()
    session.add(report)
    await session.flush()
    return report.id


async def store_results(
    session: AsyncSession,
    report_id: UUID,
    *,
    rows: pl.DataFrame | None = None,
    incidents: pl.DataFrame | None = None,
    daily: pl.DataFrame | None = None,
) -> None:
    """The report's results replaced: those not given, by none."""
    await replace_report_results(
        session,
        report_id,
        rows=REPORT.to_frame() if rows is None else rows,
        incidents=INCIDENTS.to_frame() if incidents is None else incidents,
        daily=DAILY.to_frame() if daily is None else daily,
    )


async def test_rows_come_back_in_byte_order_as_the_clis_csv(db_session: AsyncSession) -> None:
    report_id = await new_report(db_session)
    await store_results(db_session, report_id, rows=ROWS)

    stored = await report_rows(db_session, report_id)

    assert_frame_equal(stored, ROWS.sort("store_id"))
    assert report_csv_bytes(stored) == report_csv_bytes(ROWS.sort("store_id"))


async def test_replacing_rows_leaves_one_set(db_session: AsyncSession) -> None:
    report_id = await new_report(db_session)
    other_id = await new_report(db_session)
    await store_results(db_session, other_id, rows=ROWS)
    await store_results(db_session, report_id, rows=ROWS)

    fewer = ROWS.head(2)
    await store_results(db_session, report_id, rows=fewer)

    assert_frame_equal(await report_rows(db_session, report_id), fewer.sort("store_id"))
    assert_frame_equal(await report_rows(db_session, other_id), ROWS.sort("store_id"))


async def test_a_report_without_rows_has_none(db_session: AsyncSession) -> None:
    report_id = await new_report(db_session)
    await store_results(db_session, report_id, rows=REPORT.to_frame())

    assert_frame_equal(await report_rows(db_session, report_id), REPORT.to_frame())


async def test_deleting_a_report_deletes_its_rows(db_session: AsyncSession) -> None:
    report_id = await new_report(db_session)
    other_id = await new_report(db_session)
    await store_results(db_session, report_id, rows=ROWS)
    await store_results(db_session, other_id, rows=ROWS)

    assert await delete_report(db_session, report_id)

    left = await db_session.scalars(sa.select(ReportRow.report_id).distinct())
    assert list(left) == [other_id]


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# Byte order of ids again, several incidents of one store, and instants to the microsecond.
INCIDENT_ROWS = pl.DataFrame(
    [
        ("B", instant("2023-01-24 23:59:59.999999"), instant("2023-01-25 00:00:00.000001"), 0.0),
        ("a", instant("2023-01-20 10:44:30"), instant("2023-01-20 12:00:00"), 75.5),
        ("a", instant("2023-01-18 12:00:00"), instant("2023-01-18 12:00:00.500000"), 0.01),
        ("a", instant("2023-01-25 11:00:00.123456"), instant("2023-01-25 12:00:00"), 59.88),
        ("é", instant("2023-01-19 01:00:00"), instant("2023-01-19 03:30:00"), 150.0),
        ("10", instant("2023-01-21 00:00:00"), instant("2023-01-22 00:00:00"), 1440.0),
    ],
    schema=INCIDENTS,
    orient="row",
).sort("store_id", "started_at")
DAY_ROWS = pl.DataFrame(
    [
        (store, date(2023, 1, 18) + timedelta(days=offset), offset / 4, 24 - offset / 4)
        for store in ("b", "a", "B", "é", "10")
        for offset in range(8)
    ],
    schema=DAILY,
    orient="row",
).sort("store_id", "date")


async def details_of(
    session: AsyncSession, report_id: UUID, chunk_rows: int = 5000, store_id: str | None = None
) -> tuple[list[bytes], list[bytes]]:
    async def chunks(stream: AsyncIterator[bytes]) -> list[bytes]:
        return [chunk async for chunk in stream]

    return (
        await chunks(
            report_incidents_csv(session, report_id, store_id=store_id, chunk_rows=chunk_rows)
        ),
        await chunks(
            report_daily_csv(session, report_id, store_id=store_id, chunk_stores=chunk_rows)
        ),
    )


@pytest.mark.parametrize("chunk_rows", [1, 2, 7, 5000])
async def test_incidents_and_days_stream_as_the_clis_files(
    db_session: AsyncSession, chunk_rows: int
) -> None:
    report_id = await new_report(db_session)
    await store_results(db_session, report_id, incidents=INCIDENT_ROWS, daily=DAY_ROWS)

    incidents, days = await details_of(db_session, report_id, chunk_rows)

    assert b"".join(incidents) == incidents_csv_bytes(INCIDENT_ROWS)
    assert b"".join(days) == daily_csv_bytes(DAY_ROWS)
    assert incidents[0].startswith(b"store_id,started_at,ended_at,minutes\n")
    assert days[0].startswith(b"store_id,date,uptime_hours,downtime_hours\n")
    assert len(incidents) == -(-INCIDENT_ROWS.height // chunk_rows)
    stores = DAY_ROWS["store_id"].n_unique()
    assert len(days) == -(-stores // chunk_rows)


@pytest.mark.parametrize("chunk_rows", [1, 5000])
async def test_one_stores_incidents_and_days(db_session: AsyncSession, chunk_rows: int) -> None:
    report_id = await new_report(db_session)
    await store_results(db_session, report_id, incidents=INCIDENT_ROWS, daily=DAY_ROWS)

    incidents, days = await details_of(db_session, report_id, chunk_rows, store_id="a")

    mine = pl.col("store_id") == "a"
    assert b"".join(incidents) == incidents_csv_bytes(INCIDENT_ROWS.filter(mine))
    assert b"".join(days) == daily_csv_bytes(DAY_ROWS.filter(mine))
    nobody = await details_of(db_session, report_id, chunk_rows, store_id="nobody")
    assert nobody == (
        [incidents_csv_bytes(INCIDENTS.to_frame())],
        [daily_csv_bytes(DAILY.to_frame())],
    )


async def test_replacing_details_leaves_one_set_and_deleting_the_report_deletes_them(
    db_session: AsyncSession,
) -> None:
    report_id = await new_report(db_session)
    other_id = await new_report(db_session)
    await store_results(db_session, other_id, incidents=INCIDENT_ROWS, daily=DAY_ROWS)
    await store_results(db_session, report_id, incidents=INCIDENT_ROWS, daily=DAY_ROWS)
    fewer_incidents, fewer_days = INCIDENT_ROWS.head(2), DAY_ROWS.head(3)
    await store_results(db_session, report_id, incidents=fewer_incidents, daily=fewer_days)

    assert await details_of(db_session, report_id) == (
        [incidents_csv_bytes(fewer_incidents)],
        [daily_csv_bytes(fewer_days)],
    )
    assert await details_of(db_session, other_id) == (
        [incidents_csv_bytes(INCIDENT_ROWS)],
        [daily_csv_bytes(DAY_ROWS)],
    )

    assert await delete_report(db_session, report_id)
    assert await delete_report(db_session, other_id)
    for model in (ReportIncident, ReportDay):
        count = await db_session.scalar(sa.select(sa.func.count()).select_from(model))
        assert count == 0


async def test_results_in_one_pass_replace_the_rows_incidents_and_days_of_their_stores(
    db_session: AsyncSession,
) -> None:
    report_id = await new_report(db_session)
    other_id = await new_report(db_session)
    for report in (other_id, report_id):
        await replace_report_results(
            db_session, report, rows=ROWS, incidents=INCIDENT_ROWS, daily=DAY_ROWS
        )
    # The stores from "a" up to "b" (byte order: "10" and "B" before, "b" and "é" after) get
    # one incident of "a" and no rows or days; the other stores keep theirs.
    mine = pl.col("store_id").is_between(pl.lit("a"), pl.lit("b"), closed="left")
    one_incident = INCIDENT_ROWS.filter(mine).head(1)
    await replace_report_results(
        db_session,
        report_id,
        rows=ROWS.head(0),
        incidents=one_incident,
        daily=DAY_ROWS.head(0),
        stores=StoreRange("a", "b"),
    )

    others = ROWS.filter(~mine).sort("store_id")
    assert_frame_equal(await report_rows(db_session, report_id), others)
    incidents = pl.concat([INCIDENT_ROWS.filter(~mine), one_incident])
    assert await details_of(db_session, report_id) == (
        [incidents_csv_bytes(incidents.sort("store_id", "started_at"))],
        [daily_csv_bytes(DAY_ROWS.filter(~mine))],
    )
    assert_frame_equal(await report_rows(db_session, other_id), ROWS.sort("store_id"))
    assert await details_of(db_session, other_id) == (
        [incidents_csv_bytes(INCIDENT_ROWS)],
        [daily_csv_bytes(DAY_ROWS)],
    )


async def test_a_report_job_stores_the_incidents_and_days_the_cli_writes(
    db_engine: AsyncEngine, generated: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]
) -> None:
    sessions = create_sessionmaker(db_engine)
    all_polls, all_hours, all_zones = generated
    async with sessions.begin() as session:
        await ingest_polls(session, all_polls)
        await ingest_business_hours(session, all_hours)
        await ingest_timezones(session, all_zones)
    latest = all_polls["timestamp_utc"].max()
    assert isinstance(latest, datetime)
    as_of = latest - timedelta(hours=30)

    runner = Runner(owner="tests", lease_seconds=30, timeout_seconds=60, max_attempts=3)

    created = await create_report(sessions, RecordingQueue(), as_of=as_of)
    await report_runs.run_report(sessions, created.report.id, 1, runner)
    try:
        async with sessions() as session:
            stored = await details_of(session, created.report.id, chunk_rows=100)
    finally:
        ids = all_polls["store_id"].unique().to_list()
        async with sessions.begin() as session:
            await delete_report(session, created.report.id)
            for table in (Poll, Store, BusinessHours, Timezone):
                await session.execute(sa.delete(table).where(table.store_id.in_(ids)))

    cli = compute_report(all_polls, all_hours, all_zones, as_of=as_of)
    assert cli.incidents is not None
    assert cli.daily is not None
    assert cli.incidents.height > 0
    # Other tests may have left stores of their own in this database: only ours are compared.
    assert mine(b"".join(stored[0]), ids) == incidents_csv_bytes(cli.incidents)
    assert mine(b"".join(stored[1]), ids) == daily_csv_bytes(cli.daily)


def mine(csv: bytes, store_ids: list[str]) -> bytes:
    """The header and the lines of `store_ids` (which hold no comma) of a CSV."""
    header, *lines = csv.splitlines(keepends=True)
    wanted = {store.encode() for store in store_ids}
    return header + b"".join(line for line in lines if line.split(b",", 1)[0] in wanted)
