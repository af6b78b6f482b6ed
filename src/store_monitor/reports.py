"""Report use cases on the request side: create (and queue), list, read, its CSV files, one
store's details, delete; and retention.

A report's state lives in the `reports` table; its job (`store_monitor.report_runs`) runs under
a lease (`store_monitor.work`). The queue is only the transport: a report whose job could not
be queued stays pending, and the sweep queues it.
"""

import asyncio
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor.db.keyset import Cursor, Page, newest_first
from store_monitor.db.models import SHARED_IDEMPOTENCY_SCOPE, Report, ReportStatus
from store_monitor.db.report_files import StoredFile, encode_report_csv, read_report_file
from store_monitor.db.report_results import (
    delete_report_results,
    report_daily_csv,
    report_incidents_csv,
    report_rows,
)
from store_monitor.db.report_views import StoreView, report_has_store, store_view
from store_monitor.engine.localtime import computable_timezone
from store_monitor.frames import DEFAULT_TIMEZONE
from store_monitor.logs import request_id
from store_monitor.report_runs import queue_report
from store_monitor.work.queue import WorkQueue

UNFINISHED: Final = (ReportStatus.pending, ReportStatus.running)


class IdempotencyKeyReused(Exception):
    def __init__(self, key: str, report: Report) -> None:
        super().__init__(f"idempotency key {key!r} was used for a report with another as_of")
        self.key = key
        self.report = report


@dataclass(frozen=True, slots=True)
class Created:
    report: Report
    created: bool
    """False when the idempotency key named an existing report, which is returned instead."""


async def create_report(
    session: AsyncSession,
    queue: WorkQueue,
    *,
    as_of: datetime | None,
    idempotency_key: str | None = None,
    idempotency_scope: UUID = SHARED_IDEMPOTENCY_SCOPE,
) -> Created:
    """Insert a pending report and queue its first attempt; with an idempotency key known in
    `idempotency_scope` (the API key's id), that report.

    Works in the caller's session (a request holds one pooled connection, no more) and, unlike
    the other request-side use cases, commits it: the row must be committed before the job is
    queued, or a fast worker would look for a report that is not there yet. A queue that cannot
    take the job (Redis away) leaves the report pending: the sweep queues it when it can.
    An existing unfinished report has its next attempt queued again, which is harmless (queues
    deduplicate by report and attempt, and a job whose attempt was made does nothing) and heals
    a report whose first enqueue was lost.
    The report keeps the current request id (see `store_monitor.logs`): its job logs under it.
    """
    report = Report(
        as_of=as_of,
        idempotency_key=idempotency_key,
        idempotency_scope=None if idempotency_key is None else idempotency_scope,
        request_id=request_id.get(),
    )
    created = True
    try:
        async with session.begin_nested():
            session.add(report)
    except IntegrityError:
        if idempotency_key is None:
            raise
        existing = await session.scalar(
            sa.select(Report).where(
                Report.idempotency_scope == idempotency_scope,
                Report.idempotency_key == idempotency_key,
            )
        )
        if existing is None:  # deleted in between: nothing sensible to return
            raise
        if existing.as_of != as_of:
            raise IdempotencyKeyReused(idempotency_key, existing) from None
        report, created = existing, False
    await session.commit()
    if report.status in UNFINISHED:
        await queue_report(queue, report)
    return Created(report=report, created=created)


async def get_report(session: AsyncSession, report_id: UUID) -> Report | None:
    return await session.get(Report, report_id)


async def report_state(session: AsyncSession, report_id: UUID) -> sa.Row[*tuple[Any, ...]] | None:
    """The report's state and figures, by the names of `Report`'s attributes. The status poll is
    the API's most frequent request: plain columns of the table, not an ORM `Report` nor its
    ORM attributes, make it cost about a sixth fewer instructions."""
    result = await session.execute(_REPORT_STATE, {"report_id": report_id})
    return result.one_or_none()


_reports = Report.__table__.c
_REPORT_STATE: Final = sa.select(
    _reports.id,
    _reports.status,
    _reports.created_at,
    _reports.started_at,
    _reports.finished_at,
    _reports.as_of,
    _reports.now,
    _reports.error,
    _reports.row_count,
    _reports.unknown_timezones,
    _reports.ignored_polls,
    _reports.incident_count,
    _reports.attempts,
    # `Report.shards_done`, in SQL.
    (_reports.shards_total - sa.func.coalesce(_reports.shards_left, 0)).label("shards_done"),
    _reports.shards_total,
    _reports.request_id,
).where(_reports.id == sa.bindparam("report_id"))


async def list_reports(
    session: AsyncSession,
    *,
    limit: int,
    status: ReportStatus | None = None,
    after: Cursor | None = None,
) -> Page[Report]:
    """Reports newest first (ties by id), `limit` at most, those after the cursor if given: a
    keyset page (`db.keyset`)."""
    where = () if status is None else (Report.status == status,)
    return await newest_first(session, Report, *where, limit=limit, after=after)


async def delete_report(session: AsyncSession, report_id: UUID) -> bool:
    """Delete the report and its rows, incidents, days and files; False if there is none.

    A report being computed is deleted all the same: its attempt finds its lease gone at the
    next heartbeat and stops, and its final write, fenced, would find nothing to write to.
    Flushes, never commits.
    """
    deleted = await session.execute(
        sa.delete(Report).where(Report.id == report_id).returning(Report.id)
    )
    if deleted.one_or_none() is None:
        return False
    await delete_report_results(session, [report_id])
    return True


async def delete_reports_created_before(
    sessionmaker: async_sessionmaker[AsyncSession], cutoff: datetime, *, batch: int = 10
) -> int:
    """Delete every report created before `cutoff`, `batch` reports (and their rows) per
    transaction so that none holds its locks for long; how many were deleted."""
    deleted = 0
    while True:
        oldest = (
            sa.select(Report.id)
            .where(Report.created_at < cutoff)
            .order_by(Report.created_at)
            .limit(batch)
        )
        async with sessionmaker.begin() as session:
            result = await session.execute(
                sa.delete(Report)
                .where(Report.id.in_(oldest.scalar_subquery()))
                .returning(Report.id)
            )
            ids = list(result.scalars())
            await delete_report_results(session, ids)
            count = len(ids)
        deleted += count
        if count < batch:
            return deleted


async def report_file(
    session: AsyncSession, report_id: UUID, *, content: bool, owner_id: str | None = None
) -> StoredFile | None:
    """A complete report's CSV file, its gzip bytes too if `content`; None if the report is not
    (or no longer) complete. With `owner_id`, a file of that owner's stores only, made from the
    rows for the occasion (an owner's part is small; the whole is what is kept).

    One short statement on the session's connection, the bytes read whole: a download sends
    them after the session is closed, so a slow client holds memory (a third of the CSV) but
    no pooled connection, and status reads never wait behind downloads. (A separate pool for
    status reads would only move the queue: enough slow clients would still drain the other.)
    """
    if owner_id is not None:
        if not await _still_complete(session, report_id):
            return None
        rows = await report_rows(session, report_id, owner_id=owner_id)
        info, compressed = await asyncio.to_thread(encode_report_csv, rows)
        return StoredFile(info=info, gzip=compressed if content else None)
    return await read_report_file(session, report_id, content=content)


async def _still_complete(session: AsyncSession, report_id: UUID) -> bool:
    # Locked (shared) against a deletion while its file is read from the rows.
    status = await session.scalar(
        sa.select(Report.status).where(Report.id == report_id).with_for_update(read=True)
    )
    return status is ReportStatus.complete


class DetailCsv(StrEnum):
    """The CSVs made from a report's rows for each request, each `store-monitor report`'s
    option of the same name."""

    incidents = "incidents"
    daily = "daily"


async def detail_csv(
    session: AsyncSession,
    report_id: UUID,
    kind: DetailCsv,
    *,
    store_id: str | None = None,
    owner_id: str | None = None,
) -> bytes:
    """The report's incidents or daily figures (only `store_id`'s, if given; with `owner_id`,
    only that owner's stores) as the CLI's CSV, read whole in the request's session: the
    download is sent after that session is closed, so status reads never wait behind downloads
    (a few MB for 14,000 stores)."""
    write = report_incidents_csv if kind is DetailCsv.incidents else report_daily_csv
    chunks = write(session, report_id, store_id=store_id, owner_id=owner_id)
    return b"".join([chunk async for chunk in chunks])


@dataclass(frozen=True, slots=True)
class StoreDetails:
    view: StoreView
    timezone: str
    """The zone of the store's local dates: its own, or the default zone where it has none or
    an unknown one (as the engine decides)."""


async def store_details(
    session: AsyncSession, report_id: UUID, store_id: str, *, owner_id: str | None = None
) -> StoreDetails | None:
    """One store of a report: its figures, daily figures, incidents and time zone; None if the
    report has no row for it (or, with `owner_id`, the store is not the owner's)."""
    view = await store_view(session, report_id, store_id, owner_id=owner_id)
    if view is None:
        return None
    named = view.timezone_str
    return StoreDetails(
        view=view,
        timezone=named if named is not None and computable_timezone(named) else DEFAULT_TIMEZONE,
    )


async def has_store(
    session: AsyncSession, report_id: UUID, store_id: str, *, owner_id: str | None = None
) -> bool:
    """Whether the report has a row for the store (with `owner_id`: and it is the owner's)."""
    return await report_has_store(session, report_id, store_id, owner_id=owner_id)
