"""Reports in shards: the same report as in one job, whatever the order the shards run in and
whatever polls arrive meanwhile; shards taken over, retried alone, and failing their report with
a reason that names them."""

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import polars as pl
import pytest
import sqlalchemy as sa

from store_monitor import ingest, report_runs, reports, shards
from store_monitor.db.models import Report, ReportRow, ReportShard, ReportStatus
from store_monitor.db.report_inputs import StoreRange, store_ranges
from store_monitor.engine import compute_report
from store_monitor.formats import report_csv_bytes
from store_monitor.report_runs import REPORTS
from store_monitor.settings import Settings
from store_monitor.shards import RUN_SHARD, SHARDS
from store_monitor.work.arq import ArqQueue
from store_monitor.work.lease import LeaseLost, Runner
from store_monitor.work.queue import JobState
from store_monitor.work.sweep import Sweep, sweep
from store_monitor.work.table import Hold
from support.service import run_burst, serve, stored_csv, wait_until_final
from support.work import RecordingQueue, create_report

from .conftest import Frames, Sessions, load_report

# The data set has 10 stores: shards of at most 3 make 4 shards.
_SHARD_STORES = 3
_SHARDS = 4


def _runner(owner: str = "tests", *, shard_stores: int = _SHARD_STORES) -> Runner:
    return Runner(
        owner=owner,
        lease_seconds=30,
        timeout_seconds=30,
        max_attempts=3,
        shard_stores=shard_stores,
    )


async def _new_report(sessions: Sessions, *, as_of: datetime | None = None) -> UUID:
    report = Report(as_of=as_of)
    async with sessions.begin() as session:
        session.add(report)
    return report.id


async def _planned(sessions: Sessions, *, as_of: datetime | None = None) -> UUID:
    """A report planned into its shards, none of them run."""
    report_id = await _new_report(sessions, as_of=as_of)
    assert await report_runs.run_report(sessions, report_id, 1, _runner()) is ReportStatus.running
    return report_id


async def _shards(sessions: Sessions, report_id: UUID) -> list[ReportShard]:
    async with sessions() as session:
        found = await session.scalars(
            sa.select(ReportShard)
            .where(ReportShard.report_id == report_id)
            .order_by(ReportShard.shard)
        )
        return list(found.all())


async def _everything(sessions: Sessions, report_id: UUID) -> dict[str, Any]:
    """All a report's readers see of it."""
    report = await load_report(sessions, report_id)
    columns = [column for column in ReportRow.__table__.c if column.name != "report_id"]
    async with sessions() as session:
        found = await session.execute(
            sa.select(*columns).where(ReportRow.report_id == report_id).order_by(ReportRow.store_id)
        )
        rows = [tuple(row) for row in found.all()]
        incidents = await reports.detail_csv(session, report_id, reports.DetailCsv.incidents)
        daily = await reports.detail_csv(session, report_id, reports.DetailCsv.daily)
    return {
        "csv": await stored_csv(sessions, report_id),
        "incidents": incidents,
        "daily": daily,
        "rows": rows,
        "counts": (
            report.status,
            report.now,
            report.row_count,
            report.incident_count,
            report.unknown_timezones,
            report.ignored_polls,
        ),
    }


@pytest.mark.parametrize("days_back", [None, 2], ids=["latest", "as_of two days back"])
async def test_a_sharded_report_is_the_report_made_in_one_job(
    sessionmaker: Sessions, frames: Frames, days_back: int | None
) -> None:
    latest = frames[0]["timestamp_utc"].max()
    assert isinstance(latest, datetime)
    as_of = None if days_back is None else latest - timedelta(days=days_back, minutes=7)
    whole = await _new_report(sessionmaker, as_of=as_of)
    assert (
        await report_runs.run_report(sessionmaker, whole, 1, _runner(shard_stores=1000))
        is ReportStatus.complete
    )

    sharded = await _planned(sessionmaker, as_of=as_of)
    planned = await load_report(sessionmaker, sharded)
    assert (planned.status, planned.shards_total, planned.shards_left) == (
        ReportStatus.running,
        _SHARDS,
        _SHARDS,
    )
    statuses = [
        await shards.run_shard(sessionmaker, sharded, shard, 1, _runner())
        for shard in range(1, _SHARDS + 1)
    ]
    assert statuses == [ReportStatus.complete] * _SHARDS

    expected = await _everything(sessionmaker, whole)
    assert await _everything(sessionmaker, sharded) == expected
    assert expected["csv"] == report_csv_bytes(compute_report(*frames, as_of=as_of).rows)
    if as_of is not None:
        assert expected["counts"][-1] > 0  # polls after as_of, counted by the shards alike
    done = await load_report(sessionmaker, sharded)
    assert (done.shards_total, done.shards_left, done.attempts) == (_SHARDS, 0, 1)
    # The parts are in the report's file now.
    async with sessionmaker() as session:
        parts = await session.scalar(
            sa.select(sa.func.count()).where(
                ReportShard.report_id == sharded, ReportShard.csv.is_not(None)
            )
        )
    assert parts == 0


async def test_shards_are_contiguous_ranges_covering_every_store_once(
    sessionmaker: Sessions, frames: Frames
) -> None:
    async with sessionmaker() as session:
        ranges = await store_ranges(session, per_range=_SHARD_STORES)
    assert len(ranges) == _SHARDS
    assert ranges[0].first is None
    assert ranges[-1].end is None
    for before, after in itertools.pairwise(ranges):
        assert before.end == after.first
    stores = sorted(frames[0]["store_id"].unique().to_list())
    sizes = [
        sum(
            1
            for store in stores
            if (part.first is None or store >= part.first)
            and (part.end is None or store < part.end)
        )
        for part in ranges
    ]
    # As even as can be: 10 stores in 4 shards of at most 3.
    assert sizes == [2, 2, 3, 3]
    async with sessionmaker() as session:
        assert await store_ranges(session, per_range=10) == [StoreRange()]


async def test_the_last_shard_to_finish_completes_the_report_whatever_the_order(
    sessionmaker: Sessions, frames: Frames
) -> None:
    report_id = await _planned(sessionmaker)
    for shard in (3, 1, 4):
        assert await shards.run_shard(sessionmaker, report_id, shard, 1, _runner())
        report = await load_report(sessionmaker, report_id)
        assert report.status is ReportStatus.running
    assert (report.shards_total, report.shards_left) == (_SHARDS, 1)
    assert await shards.run_shard(sessionmaker, report_id, 2, 1, _runner())
    assert (await load_report(sessionmaker, report_id)).status is ReportStatus.complete
    assert await stored_csv(sessionmaker, report_id) == report_csv_bytes(
        compute_report(*frames).rows
    )
    # A duplicate job of a shard made already does nothing.
    assert await shards.run_shard(sessionmaker, report_id, 2, 1, _runner()) is None


async def test_polls_arriving_while_the_shards_run_change_nothing(
    sessionmaker: Sessions, frames: Frames
) -> None:
    report_id = await _planned(sessionmaker)
    assert await shards.run_shard(sessionmaker, report_id, 1, 1, _runner())
    # Every store is polled again an hour later, inactive, before the other shards run.
    polls = frames[0]
    latest = polls["timestamp_utc"].max()
    assert isinstance(latest, datetime)
    later = (
        polls.group_by("store_id")
        .agg(pl.col("timestamp_utc").max())
        .with_columns(
            timestamp_utc=pl.lit(latest + timedelta(hours=1)).cast(polls["timestamp_utc"].dtype),
            status=pl.lit("inactive").cast(polls["status"].dtype),
        )
        .select(polls.columns)
    )
    async with sessionmaker.begin() as session:
        await ingest.ingest_polls(session, later)
    for shard in range(2, _SHARDS + 1):
        assert await shards.run_shard(sessionmaker, report_id, shard, 1, _runner())

    report = await load_report(sessionmaker, report_id)
    assert (report.status, report.now, report.ignored_polls) == (
        ReportStatus.complete,
        latest,
        0,
    )
    assert await stored_csv(sessionmaker, report_id) == report_csv_bytes(
        compute_report(*frames).rows
    )


async def _sweep(sessions: Sessions, queue: RecordingQueue) -> Sweep:
    return await sweep(sessions, SHARDS, queue, max_attempts=3)


async def _expire_leases(sessions: Sessions) -> None:
    """Every running lease ran out a second ago (its runner died or stalled)."""
    expired = datetime.now(UTC) - timedelta(seconds=1)
    async with sessions.begin() as session:
        await session.execute(sa.update(ReportShard).values(lease_expires_at=expired))
        await session.execute(sa.update(Report).values(lease_expires_at=expired))


async def test_a_shard_whose_runner_died_is_taken_over_alone(
    sessionmaker: Sessions, frames: Frames
) -> None:
    report_id = await _planned(sessionmaker)
    for shard in (1, 3, 4):
        assert await shards.run_shard(sessionmaker, report_id, shard, 1, _runner())
    dead = shards.ShardAttempt(Hold(sessionmaker, SHARDS, (report_id, 2), 1, _runner("dead")))
    assert await dead.claim() is not None
    await _expire_leases(sessionmaker)

    queue = RecordingQueue()
    swept = await _sweep(sessionmaker, queue)
    assert (swept.taken_over, swept.requeued, swept.failed) == ([(report_id, 2)], [], [])
    assert queue.queued == [(RUN_SHARD, (report_id, 2), 2)]
    # The report's own lease ran out too, but a report in shards is its shards' to sweep.
    report_sweep = await sweep(sessionmaker, REPORTS, RecordingQueue(), max_attempts=3)
    assert report_sweep == Sweep()

    assert await shards.run_shard(sessionmaker, report_id, 2, 2, _runner("survivor")) is (
        ReportStatus.complete
    )
    done = await _everything(sessionmaker, report_id)
    assert done["csv"] == report_csv_bytes(compute_report(*frames).rows)
    # The dead attempt comes back: its write is fenced off, and nothing of it lands.
    with pytest.raises(LeaseLost):
        await dead.work()
    assert await _everything(sessionmaker, report_id) == done
    attempts = [shard.attempts for shard in await _shards(sessionmaker, report_id)]
    assert attempts == [1, 2, 1, 1]


async def test_an_interrupted_shard_is_queued_again_alone(
    sessionmaker: Sessions, frames: Frames
) -> None:
    report_id = await _planned(sessionmaker)
    for shard in (1, 2, 4):
        assert await shards.run_shard(sessionmaker, report_id, shard, 1, _runner())
    stopped = shards.ShardAttempt(Hold(sessionmaker, SHARDS, (report_id, 3), 1, _runner()))
    assert await stopped.claim() is not None
    await stopped.give_back("attempt 1 was interrupted: its runner stopped")

    queue = RecordingQueue()
    swept = await _sweep(sessionmaker, queue)
    assert (swept.requeued, swept.taken_over) == ([(report_id, 3)], [])
    assert queue.queued == [(RUN_SHARD, (report_id, 3), 2)]
    assert await shards.run_shard(sessionmaker, report_id, 3, 2, _runner()) is (
        ReportStatus.complete
    )
    assert await stored_csv(sessionmaker, report_id) == report_csv_bytes(
        compute_report(*frames).rows
    )


async def test_a_shard_out_of_attempts_fails_the_report_naming_it(
    sessionmaker: Sessions,
) -> None:
    report_id = await _planned(sessionmaker)
    assert await shards.run_shard(sessionmaker, report_id, 1, 1, _runner())
    for attempt in (1, 2, 3):
        killed = shards.ShardAttempt(Hold(sessionmaker, SHARDS, (report_id, 3), attempt, _runner()))
        assert await killed.claim() is not None
        await _expire_leases(sessionmaker)
    [_, second, third, _] = await _shards(sessionmaker, report_id)

    queue = RecordingQueue()
    swept = await _sweep(sessionmaker, queue)
    assert swept.failed == [(report_id, 3)]
    # Shards 2 and 4 are pending: queued, though the report has just failed...
    report = await load_report(sessionmaker, report_id)
    assert report.status is ReportStatus.failed
    assert report.error == (
        f"shard 3 of 4 (stores from {third.first_store!r} to before {third.end_store!r}): "
        "gave up after 3 attempts: the runner of the last one stopped renewing its lease "
        "(killed, e.g. out of memory, or cut off)"
    )
    assert report.row_count is None
    assert second.first_store is not None
    # ... their jobs find nothing to do, and the next sweep nothing to queue.
    for shard, attempt in ((2, 1), (4, 1)):
        assert await shards.run_shard(sessionmaker, report_id, shard, attempt, _runner()) is None
    later = RecordingQueue()
    assert await _sweep(sessionmaker, later) == Sweep()
    assert later.queued == []


async def test_an_error_in_a_shard_fails_the_report_at_once(
    sessionmaker: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    report_id = await _planned(sessionmaker)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("engine bug")

    monkeypatch.setattr("store_monitor.shards.compute_report", broken)
    assert await shards.run_shard(sessionmaker, report_id, 1, 1, _runner()) is (ReportStatus.failed)
    report = await load_report(sessionmaker, report_id)
    [first, *_] = await _shards(sessionmaker, report_id)
    assert report.status is ReportStatus.failed
    assert report.error == (
        f"shard 1 of 4 (stores from the first store to before {first.end_store!r}): "
        "the report could not be computed (RuntimeError, attempt 1); the runner's log has the "
        "details under the report's request id"
    )
    assert first.status is ReportStatus.failed


async def test_a_deleted_report_stops_its_shards(sessionmaker: Sessions) -> None:
    report_id = await _planned(sessionmaker)
    running = shards.ShardAttempt(Hold(sessionmaker, SHARDS, (report_id, 1), 1, _runner()))
    assert await running.claim() is not None
    async with sessionmaker.begin() as session:
        assert await reports.delete_report(session, report_id)
    assert not await running.renew()
    assert await shards.run_shard(sessionmaker, report_id, 2, 1, _runner()) is None


async def test_arq_workers_run_a_report_in_shards(
    sessionmaker: Sessions, settings: Settings, queue: ArqQueue, frames: Frames
) -> None:
    settings = settings.model_copy(update={"shard_stores": _SHARD_STORES})
    created = await create_report(sessionmaker, queue, as_of=None)
    # The report's job plans it and queues its shards, one job each, which the burst runs too.
    await run_burst(settings)
    report = await load_report(sessionmaker, created.report.id)
    assert (report.status, report.shards_total, report.shards_left) == (
        ReportStatus.complete,
        _SHARDS,
        0,
    )
    assert await stored_csv(sessionmaker, report.id) == report_csv_bytes(
        compute_report(*frames).rows
    )
    assert await queue.state(RUN_SHARD, (report.id, 1), 1) is JobState.missing  # no result kept


async def test_the_in_process_runner_runs_a_report_in_shards_and_shows_its_progress(
    sessionmaker: Sessions, settings: Settings, frames: Frames
) -> None:
    in_process = settings.model_copy(update={"redis_url": None, "shard_stores": _SHARD_STORES})
    async with serve(in_process) as client:
        report_id = (await client.post("/trigger_report")).json()["report_id"]
        metadata = await wait_until_final(client, report_id)
    assert metadata["status"] == "Complete"
    assert (metadata["shards_done"], metadata["shards_total"]) == (_SHARDS, _SHARDS)
    assert await stored_csv(sessionmaker, UUID(report_id)) == report_csv_bytes(
        compute_report(*frames).rows
    )


async def test_progress_counts_the_shards_done(sessionmaker: Sessions, settings: Settings) -> None:
    report_id = await _planned(sessionmaker)
    assert await shards.run_shard(sessionmaker, report_id, 2, 1, _runner())
    async with serve(settings) as client:
        metadata = (await client.get(f"/reports/{report_id}")).json()
    assert metadata["status"] == "Running"
    assert (metadata["shards_done"], metadata["shards_total"]) == (1, _SHARDS)


async def test_a_shard_whose_runner_died_as_it_started_is_queued_again(
    sessionmaker: Sessions, frames: Frames
) -> None:
    report_id = await _planned(sessionmaker)
    for shard in (1, 3, 4):
        assert await shards.run_shard(sessionmaker, report_id, shard, 1, _runner())

    queue = RecordingQueue(
        lambda kind, key, attempt: JobState.stale if attempt == 1 else JobState.missing
    )
    swept = await _sweep(sessionmaker, queue)
    assert (swept.requeued, queue.queued) == ([(report_id, 2)], [(RUN_SHARD, (report_id, 2), 2)])
    assert await shards.run_shard(sessionmaker, report_id, 2, 2, _runner()) is (
        ReportStatus.complete
    )
    assert await stored_csv(sessionmaker, report_id) == report_csv_bytes(
        compute_report(*frames).rows
    )
