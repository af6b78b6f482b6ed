"""A report's results in the database: its rows, incidents and days written (replacing a
retried job's), and read back: rows as a frame, incidents and days as CSV in chunks.

Their tables have no foreign key to the report: Postgres would check it row by row, a third of
the time it takes to write them. The report's final write needs none: it first takes the
report's (or shard's) row with a fenced UPDATE, which a concurrent deletion waits for or makes
fail. A deleted report's results are deleted by `delete_report_results`.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Final

import polars as pl
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import Base, ReportDay, ReportIncident, ReportRow
from store_monitor.db.owners import visible_to
from store_monitor.db.postgres import CsvRows, copy_in
from store_monitor.db.report_inputs import ALL_STORES, StoreRange
from store_monitor.formats import daily_csv_bytes, incidents_csv_bytes
from store_monitor.frames import DAILY, INCIDENT_COUNTS, INCIDENTS, REPORT


async def replace_report_results(
    session: AsyncSession,
    report_id: uuid.UUID,
    *,
    rows: pl.DataFrame,
    incidents: pl.DataFrame,
    daily: pl.DataFrame,
    incident_counts: pl.DataFrame | None = None,
    stores: StoreRange = ALL_STORES,
) -> None:
    """Make `rows` (schema REPORT), `incidents` (INCIDENTS) and `daily` (DAILY) the report's
    results of the stores in `stores`, replacing any it had there: a retried job leaves exactly
    one set. `incident_counts` (schema INCIDENT_COUNTS) go with the rows; a store without
    counts has none. Flushes, never commits.

    Each table's CSV is made in a thread while Postgres writes the table before it (Postgres'
    index upkeep is most of the time)."""
    await _replace(
        session,
        report_id,
        stores,
        [
            (ReportRow, lambda: _rows_frame(rows, incident_counts)),
            (ReportIncident, lambda: incidents.select(INCIDENTS.names())),
            (ReportDay, lambda: _weeks_frame(daily)),
        ],
    )


def _rows_frame(rows: pl.DataFrame, incident_counts: pl.DataFrame | None) -> pl.DataFrame:
    frame = rows.select(REPORT.names())
    if incident_counts is None:
        return frame
    counts = incident_counts.select(INCIDENT_COUNTS.names())
    return frame.join(counts, on="store_id", how="left", maintain_order="left").with_columns(
        pl.col(name).fill_null(0) for name in INCIDENT_COUNTS.names()[1:]
    )


def _weeks_frame(daily: pl.DataFrame) -> pl.DataFrame:
    # Each store's dates are consecutive, from its first: a row per store keeps them all.
    weeks = (
        daily.select(DAILY.names())
        .group_by("store_id", maintain_order=True)
        .agg(
            first_date=pl.col("date").first(),
            uptime_hours="uptime_hours",
            downtime_hours="downtime_hours",
        )
    )
    # COPY takes the JSON text; floats print as the shortest text that reads back the same.
    return weeks.with_columns(
        pl.format("[{}]", pl.col(name).list.eval(pl.element().cast(pl.String)).list.join(","))
        for name in ("uptime_hours", "downtime_hours")
    )


_Table = tuple[type[Base], Callable[[], pl.DataFrame]]
"""A results table, and its new rows' frame (without the report's id) to make."""


async def _replace(
    session: AsyncSession, report_id: uuid.UUID, stores: StoreRange, tables: list[_Table]
) -> None:
    """Each table's rows of the report in `stores` deleted, then its new rows copied in, one
    table after the other; the next table's CSV is made in a thread meanwhile."""

    def encode(make: Callable[[], pl.DataFrame]) -> CsvRows:
        return CsvRows.of(make().select(pl.lit(str(report_id)).alias("report_id"), pl.all()))

    def start(index: int) -> asyncio.Future[CsvRows] | None:
        if index == len(tables):
            return None
        return asyncio.ensure_future(asyncio.to_thread(encode, tables[index][1]))

    following = start(0)
    try:
        for index, (model, _) in enumerate(tables):
            columns = model.__table__.c
            bounds = []
            if stores.first is not None:
                bounds.append(columns.store_id >= stores.first)
            if stores.end is not None:
                bounds.append(columns.store_id < stores.end)
            await session.execute(
                sa.delete(model)
                .where(columns.report_id == report_id, *bounds)
                .execution_options(synchronize_session=False)
            )
            assert following is not None
            current, following = following, start(index + 1)
            await copy_in(session, model.__tablename__, await current)
    finally:
        if following is not None:
            following.cancel()


async def delete_report_results(session: AsyncSession, report_ids: Sequence[uuid.UUID]) -> None:
    """Delete the rows, incidents and days of reports this transaction has just deleted.

    Statements of their own, after the reports' deletion: a final write that held a report's
    row first has committed by then, and these statements see what it wrote."""
    if not report_ids:
        return
    for model in (ReportRow, ReportIncident, ReportDay):
        await session.execute(
            sa.delete(model)
            .where(model.__table__.c.report_id.in_(report_ids))
            .execution_options(synchronize_session=False)
        )


async def report_rows(
    session: AsyncSession, report_id: uuid.UUID, *, owner_id: str | None = None
) -> pl.DataFrame:
    """The report's stored rows (schema REPORT) in store_id byte order (the column's collation),
    the engine's order: `report_csv_bytes` of them is the CLI's file. With `owner_id`, only the
    rows of that owner's stores."""
    result = await session.execute(
        sa.select(*(getattr(ReportRow, name) for name in REPORT.names()))
        .where(ReportRow.report_id == report_id, visible_to(owner_id, ReportRow.store_id))
        .order_by(ReportRow.store_id)
    )
    return pl.DataFrame(result.all(), schema=REPORT, orient="row")


async def report_incidents_csv(
    session: AsyncSession,
    report_id: uuid.UUID,
    *,
    store_id: str | None = None,
    owner_id: str | None = None,
    chunk_rows: int = 5000,
) -> AsyncIterator[bytes]:
    """The report's incidents (only `store_id`'s, if given; only the stores of `owner_id`, if
    given) as CSV in chunks, the first with the header: together exactly the bytes
    `incidents_csv_bytes` gives for them (see `report_rows_csv`). Sorted by store_id, then
    started_at."""
    pages = _pages(
        session,
        ReportIncident,
        INCIDENTS,
        ("store_id", "started_at"),
        report_id=report_id,
        store_id=store_id,
        owner_id=owner_id,
        chunk_rows=chunk_rows,
    )
    async for frame, header in pages:
        yield incidents_csv_bytes(frame, header=header)


async def report_daily_csv(
    session: AsyncSession,
    report_id: uuid.UUID,
    *,
    store_id: str | None = None,
    owner_id: str | None = None,
    chunk_stores: int = 1000,
) -> AsyncIterator[bytes]:
    """The report's daily figures (only `store_id`'s, and `owner_id`'s stores, if given) as CSV
    in chunks of up to
    `chunk_stores` stores' dates, as `report_incidents_csv` does its incidents. Sorted by
    store_id, then date."""
    pages = _pages(
        session,
        ReportDay,
        _WEEKS,
        ("store_id",),
        report_id=report_id,
        store_id=store_id,
        owner_id=owner_id,
        chunk_rows=chunk_stores,
    )
    async for weeks, header in pages:
        days = weeks.explode("uptime_hours", "downtime_hours").select(
            "store_id",
            date=pl.col("first_date") + pl.duration(days=pl.int_range(pl.len()).over("store_id")),
            uptime_hours="uptime_hours",
            downtime_hours="downtime_hours",
        )
        yield daily_csv_bytes(days, header=header)


# A `ReportDay` row: a store's week.
_WEEKS: Final = pl.Schema(
    {
        "store_id": pl.String(),
        "first_date": pl.Date(),
        "uptime_hours": pl.List(pl.Float64()),
        "downtime_hours": pl.List(pl.Float64()),
    }
)


async def _pages(
    session: AsyncSession,
    model: type[Base],
    schema: pl.Schema,
    key: tuple[str, ...],
    *,
    report_id: uuid.UUID,
    store_id: str | None,
    owner_id: str | None,
    chunk_rows: int,
) -> AsyncIterator[tuple[pl.DataFrame, bool]]:
    """A report's rows of `model` as frames of `schema` (and whether each is the first), up to
    `chunk_rows` at a time in `key` order, by keyset pagination on the primary key (report_id,
    *key). At least one frame, empty if there are no rows."""
    table = model.__table__
    query = sa.select(*(table.c[name] for name in schema.names())).where(
        table.c.report_id == report_id, visible_to(owner_id, table.c.store_id)
    )
    if store_id is not None:
        query = query.where(table.c.store_id == store_id)
    query = query.order_by(*(table.c[name] for name in key)).limit(chunk_rows)
    after: tuple[object, ...] | None = None
    first = True
    while True:
        page = query
        if after is not None:
            page = query.where(sa.tuple_(*(table.c[name] for name in key)) > sa.tuple_(*after))
        result = await session.execute(page)
        frame = pl.DataFrame(result.all(), schema=schema, orient="row")
        if frame.height or first:
            yield frame, first
        first = False
        if frame.height < chunk_rows:
            return
        after = frame.select(key).row(-1)
