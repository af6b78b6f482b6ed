"""Takeover between real `store-monitor worker` processes on Redis and Postgres: a worker killed
mid-report, one paused past its lease and resumed, a report that kills every worker, and a
worker that outlives a Redis outage (on a private redis-server of its own)."""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor import ingest
from store_monitor.db.models import Report, ReportShard, ReportStatus
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.settings import Settings
from store_monitor.sources import read_business_hours, read_polls, read_timezones
from store_monitor.synthetic import GeneratedFiles
from store_monitor.work.arq import ArqQueue
from support.processes import free_port, redis_server
from support.service import empty_postgres, expected_csv, postgres_mode, serve, stored_csv
from support.work import create_report

# The worker command with a test-only hook around the computation: `slow` sleeps the given
# seconds first (so that a test finds the report computing), `die` kills its own process.
_WORKER = """
import os, signal, sys, time
from store_monitor import shards
from store_monitor.cli import app

compute = shards.compute_report
mode, seconds = sys.argv[1], float(sys.argv[2])

def hooked(*args, **kwargs):
    if mode == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(seconds)
    return compute(*args, **kwargs)

shards.compute_report = hooked
app(["worker"])
"""

Sessions = async_sessionmaker[AsyncSession]


@dataclass
class _Workers:
    settings: Settings
    log_dir: Path
    processes: dict[int, asyncio.subprocess.Process] = field(default_factory=dict)
    logs: dict[int, Path] = field(default_factory=dict)

    async def start(self, mode: str = "slow", seconds: float = 0.0) -> asyncio.subprocess.Process:
        log = self.log_dir / f"worker-{len(self.processes)}.log"
        with log.open("wb") as output:
            process = await asyncio.create_subprocess_exec(
                *(sys.executable, "-c", _WORKER, mode, str(seconds)),
                env=_environment(self.settings),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=output,
            )
        self.processes[process.pid] = process
        self.logs[process.pid] = log
        return process

    def log(self, process: asyncio.subprocess.Process) -> str:
        return self.logs[process.pid].read_text(errors="replace")

    async def stop_all(self) -> None:
        for process in self.processes.values():
            if process.returncode is None:
                process.kill()  # SIGKILL ends a stopped (SIGSTOP) process too
                await process.wait()


def _environment(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORE_MONITOR_")}
    names = (
        *("database_url", "redis_url", "queue_name", "lease_seconds", "sweep_interval_seconds"),
        *("job_max_tries", "shard_stores"),
    )
    env |= {f"STORE_MONITOR_{name.upper()}": str(getattr(settings, name)) for name in names}
    return env


@contextlib.asynccontextmanager
async def _service(
    postgres_url: str, data_files: GeneratedFiles, tmp_path: Path, **overrides: Any
) -> AsyncIterator[tuple[Sessions, ArqQueue, _Workers]]:
    await empty_postgres(postgres_url)
    settings = postgres_mode(postgres_url, **overrides)
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    sessions = create_sessionmaker(engine)
    async with sessions.begin() as session:
        await ingest.ingest_polls(session, read_polls(data_files.store_status))
        await ingest.ingest_business_hours(session, read_business_hours(data_files.menu_hours))
        await ingest.ingest_timezones(session, read_timezones(data_files.timezones))
    assert settings.redis_url is not None
    # Not `runtime.build_work`'s: without a claim time no job here is ever stale, however slow
    # the machine.
    queue = await ArqQueue.connect(
        settings.redis_url,
        queue_name=settings.queue_name,
        job_timeout_seconds=settings.job_timeout_seconds,
    )
    workers = _Workers(settings, tmp_path)
    try:
        yield sessions, queue, workers
    finally:
        await workers.stop_all()
        await queue.close()
        await engine.dispose()


async def _report(sessions: Sessions, report_id: UUID) -> Report:
    async with sessions() as session:
        report = await session.get(Report, report_id)
    assert report is not None
    return report


async def _until(
    sessions: Sessions, report_id: UUID, condition: Callable[[Report], bool], *, within: float
) -> Report:
    async with asyncio.timeout(within):
        while True:
            report = await _report(sessions, report_id)
            if condition(report):
                return report
            await asyncio.sleep(0.05)


async def _logged(
    workers: _Workers, process: asyncio.subprocess.Process, text: str, *, within: float = 30
) -> None:
    async with asyncio.timeout(within):
        while True:
            if text in workers.log(process):
                return
            await asyncio.sleep(0.05)


def _computing(report: Report) -> bool:
    return report.status is ReportStatus.running and report.lease_owner is not None


def _holder(workers: _Workers, report: Report) -> asyncio.subprocess.Process:
    assert report.lease_owner is not None
    pid = int(report.lease_owner.rsplit(":", 2)[1])  # host:pid:token
    return workers.processes[pid]


async def test_a_killed_workers_report_is_finished_by_another_within_a_minute(
    postgres_url: str, data_files: GeneratedFiles, tmp_path: Path
) -> None:
    async with _service(
        postgres_url, data_files, tmp_path, lease_seconds=3.0, sweep_interval_seconds=1.0
    ) as (sessions, queue, workers):
        for _ in range(2):
            await workers.start("slow", 3.0)
        created = await create_report(sessions, queue, as_of=None)
        running = await _until(sessions, created.report.id, _computing, within=30)
        victim = _holder(workers, running)

        victim.send_signal(signal.SIGKILL)  # what an out-of-memory kill looks like
        killed_at = time.monotonic()
        done = await _until(
            sessions, created.report.id, lambda r: r.status is ReportStatus.complete, within=60
        )
        takeover_seconds = time.monotonic() - killed_at

        assert await victim.wait() == -signal.SIGKILL
        assert takeover_seconds <= 60
        # The lease ran out (at most 3 s), a sweep saw it (1 s), attempt 2 computed (3 s).
        print(f"SIGKILL -> Complete: {takeover_seconds:.1f} s")
        assert (done.attempts, done.error, done.lease_owner) == (2, None, None)
        assert await stored_csv(sessions, created.report.id) == expected_csv(data_files)
        [survivor] = [p for p in workers.processes.values() if p is not victim]
        assert "attempt 2 takes it over" in workers.log(survivor)


async def test_a_killed_workers_shard_is_taken_over_alone(
    postgres_url: str, data_files: GeneratedFiles, tmp_path: Path
) -> None:
    async with _service(
        postgres_url,
        data_files,
        tmp_path,
        lease_seconds=3.0,
        sweep_interval_seconds=1.0,
        shard_stores=4,  # the 10 stores in 3 shards
    ) as (sessions, queue, workers):
        for _ in range(2):
            await workers.start("slow", 2.0)
        created = await create_report(sessions, queue, as_of=None)
        async with asyncio.timeout(30):
            while True:
                running = await _running_shards(sessions, created.report.id)
                if running:
                    break
                await asyncio.sleep(0.05)
        shard, owner = running[0]
        victim = workers.processes[int(owner.rsplit(":", 2)[1])]
        victim.send_signal(signal.SIGKILL)
        done = await _until(
            sessions, created.report.id, lambda r: r.status is ReportStatus.complete, within=60
        )

        assert await victim.wait() == -signal.SIGKILL
        assert (done.attempts, done.shards_total, done.error) == (1, 3, None)
        assert await stored_csv(sessions, created.report.id) == expected_csv(data_files)
        async with sessions() as session:
            attempts = dict(
                (
                    await session.execute(
                        sa.select(ReportShard.shard, ReportShard.attempts).where(
                            ReportShard.report_id == created.report.id
                        )
                    )
                ).all()
            )
        # The killed shard's attempt 2 finished it. A shard whose job the victim had taken but
        # not yet claimed is finished by attempt 2 as well (its attempt 1 never ran), the others
        # by attempt 1.
        assert attempts[shard] == 2
        assert set(attempts.values()) <= {1, 2}
        [survivor] = [p for p in workers.processes.values() if p is not victim]
        assert f"shard {shard}: the lease of attempt 1 ran out" in workers.log(survivor)


async def _running_shards(sessions: Sessions, report_id: UUID) -> list[tuple[int, str]]:
    """(shard, lease owner) of the report's shards being computed."""
    async with sessions() as session:
        found = await session.execute(
            sa.select(ReportShard.shard, ReportShard.lease_owner).where(
                ReportShard.report_id == report_id,
                ReportShard.status == ReportStatus.running,
                ReportShard.lease_owner.is_not(None),
            )
        )
        return [(shard, owner) for shard, owner in found.all() if owner is not None]


async def test_a_paused_worker_that_lost_its_lease_writes_nothing_when_it_resumes(
    postgres_url: str, data_files: GeneratedFiles, tmp_path: Path
) -> None:
    async with _service(
        postgres_url, data_files, tmp_path, lease_seconds=1.5, sweep_interval_seconds=0.3
    ) as (sessions, queue, workers):
        for _ in range(2):
            await workers.start("slow", 3.0)
        created = await create_report(sessions, queue, as_of=None)
        zombie = _holder(workers, await _until(sessions, created.report.id, _computing, within=30))

        zombie.send_signal(signal.SIGSTOP)  # a long GC pause, a frozen VM, a partition
        try:
            done = await _until(
                sessions, created.report.id, lambda r: r.status is ReportStatus.complete, within=60
            )
        finally:
            zombie.send_signal(signal.SIGCONT)
        assert done.attempts == 2

        # Back, the zombie finds its lease gone: at its next heartbeat, or when its final
        # write is refused, whichever comes first. Either way it drops its result.
        await _logged(workers, zombie, "attempt 1 lost its lease")
        after = await _report(sessions, created.report.id)
        assert (after.status, after.attempts, after.finished_at) == (
            ReportStatus.complete,
            2,
            done.finished_at,
        )
        assert await stored_csv(sessions, created.report.id) == expected_csv(data_files)
        assert zombie.returncode is None


async def test_a_report_that_kills_every_worker_fails_saying_so(
    postgres_url: str, data_files: GeneratedFiles, tmp_path: Path
) -> None:
    async with _service(
        postgres_url,
        data_files,
        tmp_path,
        lease_seconds=1.0,
        sweep_interval_seconds=0.3,
        job_max_tries=2,
    ) as (sessions, queue, workers):
        first, second = [await workers.start("die") for _ in range(2)]
        created = await create_report(sessions, queue, as_of=None)
        async with asyncio.timeout(60):
            assert await first.wait() == await second.wait() == -signal.SIGKILL
        # Both attempts killed their workers; the next worker to come fails the report.
        third = await workers.start("die")
        failed = await _until(
            sessions, created.report.id, lambda r: r.status is ReportStatus.failed, within=30
        )
        assert (failed.attempts, failed.error) == (
            2,
            "gave up after 2 attempts: the runner of the last one stopped renewing its lease "
            "(killed, e.g. out of memory, or cut off)",
        )
        assert third.returncode is None


@pytest.fixture
def redis_port() -> int:
    if subprocess.run(["which", "redis-server"], capture_output=True).returncode != 0:
        pytest.fail("the outage test needs redis-server on PATH")
    return free_port()


async def test_a_worker_outlives_a_redis_outage_and_picks_up_the_reports_after_it(
    postgres_url: str, data_files: GeneratedFiles, tmp_path: Path, redis_port: int
) -> None:
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    async with (
        redis_server(redis_port) as redis,
        _service(
            postgres_url, data_files, tmp_path, redis_url=redis_url, sweep_interval_seconds=0.3
        ) as (sessions, queue, workers),
    ):
        worker = await workers.start()
        before = await create_report(sessions, queue, as_of=None)
        await _until(
            sessions, before.report.id, lambda r: r.status is ReportStatus.complete, within=30
        )

        # Triggered while Redis is away: stored pending, answered 202; the database is the
        # source of truth, and the sweep queues the report once Redis is back.
        async with serve(workers.settings) as client:
            redis.terminate()
            await redis.wait()
            await _logged(workers, worker, "lost Redis")
            triggered = await client.post("/trigger_report")
        assert (triggered.status_code, triggered.json()["status"]) == (202, "Pending")
        during = UUID(triggered.json()["report_id"])
        assert (await _report(sessions, during)).status is ReportStatus.pending

        async with redis_server(redis_port):
            after = await create_report(sessions, queue, as_of=None)
            for report_id in (during, after.report.id):
                done = await _until(
                    sessions, report_id, lambda r: r.status is ReportStatus.complete, within=30
                )
                assert await stored_csv(sessions, done.id) == expected_csv(data_files)
            assert worker.returncode is None
            log = workers.log(worker)
            assert "Redis is back" in log
