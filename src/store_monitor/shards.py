"""Reports in shards: computing a range of a report's stores, and a report too large for one job
split into ranges that jobs of their own compute.

A report's first job plans it: with more stores than the runner's `shard_stores`, it cuts the
stores, in store-id order, into contiguous ranges (`store_ranges`), one shard each, and pins
the report's `now` (`write_plan`). Each shard is claimed, leased, fenced, taken over and
retried alone, as a report is (see `store_monitor.work`); it reads only its stores' polls of
the week and writes only its stores' rows, incidents and days. A counter on the report counts
the shards left; the shard that brings it to zero completes the report in the same
transaction, its CSV file made of the shards' parts in order. A shard out of attempts, or with
an error, fails the report with a reason that names it.

Every shard computes at the pinned `now`, so polls that arrive while a report runs (at later
instants) change none of its figures.
"""

import asyncio
import logging
import weakref
from datetime import UTC, datetime
from typing import Final
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor import engine
from store_monitor.db.models import Report, ReportShard, ReportStatus, Store
from store_monitor.db.report_files import encode_csv, store_report_file
from store_monitor.db.report_inputs import ALL_STORES, StoreRange, load_report_inputs
from store_monitor.db.report_results import replace_report_results
from store_monitor.engine import compute_report, incident_counts
from store_monitor.formats import report_csv_bytes
from store_monitor.frames import REPORT
from store_monitor.logs import request_context
from store_monitor.memory import release_freed_heap
from store_monitor.webhooks.report_events import announce_completed, announce_failed
from store_monitor.work.attempt import Attempt, Claimed, run
from store_monitor.work.lease import LeaseLost, Runner, failed_values, finished_values
from store_monitor.work.table import Hold, Key, WorkTable, key_id

log = logging.getLogger(__name__)

RUN_SHARD: Final = "run_shard"
"""The job of a shard's attempt; its arguments: the report id as text, the shard, the attempt."""


async def compute_stores(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    as_of: datetime | None,
    stores: StoreRange = ALL_STORES,
    count_later: bool | None = None,
) -> tuple[engine.Report, int]:
    """The report of the stores in `stores` at `as_of` (None: the latest poll), with its
    incidents and days, read from one snapshot; and the polls after its `now` (`ignored_polls`
    of `load_report_inputs`: not loaded, so the engine cannot count them).

    The inputs and the engine's frames are most of a worker's memory, and are dropped on
    return: one computation at a time per event loop holds them, the others wait (a worker's
    other jobs meanwhile write their results, which take Postgres' time, not memory)."""
    async with _computing():
        async with sessionmaker() as session:
            inputs = await load_report_inputs(
                session, as_of=as_of, stores=stores, count_later=count_later
            )
        release_freed_heap()
        # Polars releases the GIL: computing in a thread keeps the event loop serving.
        result = await asyncio.to_thread(
            compute_report,
            inputs.polls,
            inputs.business_hours,
            inputs.timezones,
            as_of=inputs.now,
        )
    return result, inputs.ignored_polls


_COMPUTING: Final = weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]()


def _computing() -> asyncio.Lock:
    """The event loop's lock on computing (an asyncio lock serves one loop only)."""
    return _COMPUTING.setdefault(asyncio.get_running_loop(), asyncio.Lock())


async def write_results(
    session: AsyncSession,
    report_id: UUID,
    result: engine.Report,
    *,
    stores: StoreRange = ALL_STORES,
) -> None:
    """Make `result` the report's rows, incidents and days of the stores in `stores`, replacing
    any it had there. Flushes, never commits."""
    assert result.incidents is not None
    assert result.daily is not None
    counts = None if result.now is None else incident_counts(result.incidents, now=result.now)
    await replace_report_results(
        session,
        report_id,
        rows=result.rows,
        incidents=result.incidents,
        daily=result.daily,
        incident_counts=counts,
        stores=stores,
    )


async def write_plan(
    session: AsyncSession,
    report_id: UUID,
    fence: tuple[sa.ColumnElement[bool], ...],
    *,
    as_of: datetime | None,
    ranges: list[StoreRange],
) -> bool:
    """Record the report's shards, one per range of `ranges` (in store-id order, see
    `store_ranges`), all pending, and pin the `now` every shard computes at: `as_of`, or else
    the latest poll. False (and nothing written) if the report's attempt no longer holds it
    (`fence`, its row's conditions). Flushes, never commits.

    The report stays running; from now on its shards hold the leases, and the report's own
    sweep leaves it to theirs (see `SHARDS`).
    """
    latest = sa.select(sa.func.max(Store.latest_poll_at)).scalar_subquery()
    total = len(ranges)
    planned = await session.execute(
        sa.update(Report)
        .where(*fence)
        .values(now=latest if as_of is None else as_of, shards_total=total, shards_left=total)
        .returning(Report.id)
    )
    if planned.one_or_none() is None:
        return False
    await session.execute(
        sa.insert(ReportShard),
        [
            {
                "report_id": report_id,
                "shard": shard,
                "first_store": stores.first,
                "end_store": stores.end,
                "status": ReportStatus.pending,
            }
            for shard, stores in enumerate(ranges, start=1)
        ],
    )
    return True


def _report_running() -> sa.ColumnElement[bool]:
    # A report failed by another shard, or deleted, stops its shards too.
    return sa.and_(Report.id == ReportShard.report_id, Report.status == ReportStatus.running)


async def _fail_report(session: AsyncSession, key: Key, reason: str) -> None:
    """Fail the shard's report, if still running, with a reason that names the shard."""
    report_id, shard = key_id(key), key[1]
    failed = (
        await session.execute(
            sa.select(ReportShard.first_store, ReportShard.end_store).where(
                ReportShard.report_id == report_id, ReportShard.shard == shard
            )
        )
    ).one()
    report = (
        await session.execute(
            sa.select(Report.shards_total, Report.request_id)
            .where(Report.id == report_id, Report.status == ReportStatus.running)
            .with_for_update()
        )
    ).one_or_none()
    if report is None:  # failed by another shard already, or deleted
        return
    stores = _describe(StoreRange(failed.first_store, failed.end_store))
    why = f"shard {shard} of {report.shards_total} ({stores}): {reason}"
    await session.execute(
        sa.update(Report).where(Report.id == report_id).values(failed_values(why))
    )
    await announce_failed(session, report_id, why)
    with request_context(report.request_id):
        log.warning("report %s: failed: %s", report_id, why)


SHARDS: Final = WorkTable(
    kind=RUN_SHARD,
    model=ReportShard,
    noun="report",
    order_by=(Report.created_at, ReportShard.shard),
    waiting=_report_running,
    alive=_report_running,
    on_fail=_fail_report,
)


async def run_shard(
    sessionmaker: async_sessionmaker[AsyncSession],
    report_id: UUID,
    shard: int,
    attempt: int,
    runner: Runner,
) -> ReportStatus | None:
    """The shard job's body: make attempt `attempt` of the shard, if the shard is waiting for
    it and its report is running (see `store_monitor.work.attempt.run`). The status the shard
    is left with (`complete` also when it completed the report); None if the attempt did not
    run."""
    hold = Hold(sessionmaker, SHARDS, (report_id, shard), attempt, runner)
    return await run(ShardAttempt(hold), runner)


class ShardAttempt(Attempt):
    def __init__(self, hold: Hold) -> None:
        super().__init__(hold)
        self.stores = ALL_STORES
        self.now: datetime | None = None
        self.count_later = False
        self.total = 0

    @property
    def report_id(self) -> UUID:
        return key_id(self.hold.key)

    async def claim(self) -> Claimed | None:
        row = await self.hold.claim(
            ReportShard.first_store,
            ReportShard.end_store,
            Report.now,
            Report.as_of,
            Report.shards_total,
            Report.request_id,
        )
        if row is None:
            return None
        self.stores = StoreRange(row.first_store, row.end_store)
        self.now, self.count_later = row.now, row.as_of is not None
        self.total = row.shards_total or 0
        return Claimed(request_id=row.request_id)

    async def work(self) -> ReportStatus:
        # A report is sharded only when it has stores, so polls: its `now` is resolved.
        assert self.now is not None
        sessionmaker = self.hold.sessionmaker
        result, ignored_polls = await compute_stores(
            sessionmaker, as_of=self.now, stores=self.stores, count_later=self.count_later
        )
        part = await asyncio.to_thread(report_csv_bytes, result.rows, header=False)
        async with sessionmaker.begin() as session:
            left = await self._write(session, result, part, ignored_polls)
            if left is None:
                raise LeaseLost
            if left == 0:
                await _complete(session, self.report_id, self.hold.runner.public_url)
        log.info(
            "report %s: shard %s of %d complete (%d stores)",
            self.report_id,
            self.hold.key[1],
            self.total,
            result.rows.height,
        )
        return ReportStatus.complete

    async def _write(
        self, session: AsyncSession, result: engine.Report, part: bytes, ignored: int
    ) -> int | None:
        """The shard's results and its count off the report's shards left (None: not held)."""
        held = await session.execute(
            sa.update(ReportShard)
            .where(*self.hold.fence())
            .values(
                {
                    **finished_values(),
                    "row_count": result.rows.height,
                    "incident_count": None if result.incidents is None else result.incidents.height,
                    "unknown_timezones": len(result.unknown_timezones),
                    "ignored_polls": ignored,
                    "csv": part,
                }
            )
            .returning(ReportShard.shard)
        )
        if held.one_or_none() is None:
            return None
        await write_results(session, self.report_id, result, stores=self.stores)
        # The fan-in: last, so that the report's row is locked only until the commit.
        counted = await session.execute(
            sa.update(Report)
            .where(
                Report.id == self.report_id,
                Report.status == ReportStatus.running,
                Report.shards_left > 0,
            )
            .values(shards_left=Report.shards_left - 1)
            .returning(Report.shards_left)
        )
        return counted.scalar_one_or_none()


async def _complete(session: AsyncSession, report_id: UUID, public_url: str) -> None:
    """Complete the report whose last shard this transaction wrote: its file from the shards'
    parts in order, its counts their sums; announce it. Flushes, never commits."""
    parts = (
        await session.execute(
            sa.select(
                ReportShard.csv,
                ReportShard.row_count,
                ReportShard.incident_count,
                ReportShard.unknown_timezones,
                ReportShard.ignored_polls,
            )
            .where(ReportShard.report_id == report_id)
            .order_by(ReportShard.shard)
        )
    ).all()
    data = report_csv_bytes(REPORT.to_frame()) + b"".join(part.csv or b"" for part in parts)
    rows = sum(part.row_count or 0 for part in parts)
    await store_report_file(
        session, report_id, await asyncio.to_thread(encode_csv, data, rows=rows)
    )
    await session.execute(
        sa.update(Report)
        .where(Report.id == report_id)
        .values(
            status=ReportStatus.complete,
            finished_at=datetime.now(UTC),
            row_count=rows,
            incident_count=sum(part.incident_count or 0 for part in parts),
            unknown_timezones=sum(part.unknown_timezones or 0 for part in parts),
            ignored_polls=sum(part.ignored_polls or 0 for part in parts),
            error=None,
            lease_owner=None,
            lease_expires_at=None,
        )
    )
    # The file holds them now.
    await session.execute(
        sa.update(ReportShard).where(ReportShard.report_id == report_id).values(csv=None)
    )
    await announce_completed(session, report_id, public_url=public_url)
    log.info("report %s: complete, from %d shards", report_id, len(parts))


def _describe(stores: StoreRange) -> str:
    """The range in words, for reasons and logs."""
    start = "the first store" if stores.first is None else repr(stores.first)
    end = "the last store" if stores.end is None else f"before {stores.end!r}"
    return f"stores from {start} to {end}"
