"""No value that ingest accepts can fail a report: random rows, many at the edges of what the
readers take (Unicode ids, the first and last instants allowed, 24:00, odd zone names), go
through the real path (reader, chunked load into Postgres, report inputs) and the report over
them must complete, one row per polled store."""

import asyncio
import csv
import io
import zoneinfo
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, time
from functools import partial
from typing import Any

import polars as pl
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import Base
from store_monitor.db.report_inputs import load_report_inputs
from store_monitor.db.session import create_engine
from store_monitor.engine import compute_report
from store_monitor.ingest import HoursLoad, Load, PollsLoad, TimezonesLoad, load_csv
from store_monitor.sources import (
    SourceError,
    read_business_hours,
    read_polls,
    read_timezones,
)

LATEST = datetime(2030, 1, 1, tzinfo=UTC)
_ODD_IDS = [
    "a/b",
    "%2F",
    "?x#y",
    "a b",
    "e\u0301",
    "\u202eabc",
    "\u2028",
    "😀",
    "x" * 255,
    "0" * 19,
]
store_ids = st.one_of(
    st.sampled_from(_ODD_IDS),
    st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=12),
)
instants = st.one_of(
    st.sampled_from([datetime(2000, 1, 1, tzinfo=UTC), LATEST]),
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=LATEST.replace(tzinfo=None),
        timezones=st.just(UTC),
    ),
)
stamp_formats: list[Callable[[datetime], str]] = [
    lambda at: at.strftime("%Y-%m-%d %H:%M:%S.%f UTC"),
    lambda at: at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    lambda at: at.astimezone(zoneinfo.ZoneInfo("Asia/Kolkata")).isoformat(),
]
polls_rows = st.lists(
    st.tuples(
        store_ids,
        st.sampled_from(["active", "inactive", " Active", "INACTIVE "]),
        st.tuples(instants, st.sampled_from(stamp_formats)).map(lambda pair: pair[1](pair[0])),
    ),
    min_size=1,
    max_size=12,
)


def _time_text(value: time) -> str:
    return value.isoformat() if value.microsecond else value.strftime("%H:%M:%S")


times = st.one_of(st.times().map(_time_text), st.sampled_from(["00:00", "23:59:59.999999", "9:05"]))


def hours_rows(ids: st.SearchStrategy[str]) -> st.SearchStrategy[list[tuple[str, str, str, str]]]:
    end_times = st.one_of(times, st.just("24:00"))
    return st.lists(st.tuples(ids, st.integers(0, 6).map(str), times, end_times), max_size=12)


zone_names = st.one_of(
    st.sampled_from(sorted(zoneinfo.available_timezones())),
    st.sampled_from(["", "  ", "Factory", "localtime", "Mars/Olympus_Mons", "utc", "+05:00"]),
    st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=20),
)


def zones_rows(ids: st.SearchStrategy[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    return st.lists(st.tuples(ids, zone_names), max_size=12)


def _csv(header: list[str], rows: Sequence[Sequence[str]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue().encode()


@st.composite
def files(draw: st.DrawFn) -> tuple[bytes, bytes, bytes]:
    """Polls, hours and zones files; the hours and zones mostly of the polled stores."""
    polls = draw(polls_rows)
    polled = st.one_of(st.sampled_from([row[0] for row in polls]), store_ids)
    return (
        _csv(["store_id", "status", "timestamp_utc"], polls),
        _csv(
            ["store_id", "dayOfWeek", "start_time_local", "end_time_local"],
            draw(hours_rows(polled)),
        ),
        _csv(["store_id", "timezone_str"], draw(zones_rows(polled))),
    )


async def _pieces(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 50):
        yield data[start : start + 50]


async def _loaded(
    load: Load[Any], read: Callable[..., pl.DataFrame], data: bytes
) -> pl.DataFrame | None:
    """The file's frame if the reader accepts it (then stored by `load`), else None."""
    try:
        frame = read(data, name="f.csv")
    except SourceError:
        return None
    await load_csv(
        load, _pieces(data), name="f.csv", read=partial(read, name="f.csv"), chunk_bytes=64
    )
    return frame


async def _ingest_and_report(url: str, polls: bytes, hours: bytes, zones: bytes) -> None:
    engine = create_engine(url, process_name="store-monitor-tests")
    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(table.delete())
            session = AsyncSession(bind=connection)
            try:
                read = partial(read_polls, latest=LATEST)
                accepted = await _loaded(PollsLoad(session), read, polls)
                await _loaded(HoursLoad(session), read_business_hours, hours)
                await _loaded(TimezonesLoad(session), read_timezones, zones)
                inputs = await load_report_inputs(session, as_of=None)
                report = compute_report(
                    inputs.polls, inputs.business_hours, inputs.timezones, as_of=inputs.now
                )
                stores = 0 if accepted is None else accepted["store_id"].n_unique()
                assert report.rows.height == stores
                assert report.incidents is not None
                assert report.daily is not None
            finally:
                await session.close()
                await transaction.rollback()
    finally:
        await engine.dispose()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=files())
@example(  # Python's zoneinfo lists "Factory"; Polars cannot compute in it
    data=(
        b"store_id,status,timestamp_utc\nz2,active,2023-01-22T12:00:00Z\n",
        b"store_id,dayOfWeek,start_time_local,end_time_local\nz2,6,09:00,17:00\n",
        b"store_id,timezone_str\nz2,Factory\n",
    )
)
def test_any_accepted_rows_make_a_report_that_completes(
    postgres_url: str, data: tuple[bytes, bytes, bytes]
) -> None:
    asyncio.run(_ingest_and_report(postgres_url, *data))
