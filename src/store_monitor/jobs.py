"""The report queue: job names, the two ways a report's jobs get run, and the periodic upkeep
every runner does.

`ArqQueue` hands (report id, attempt) pairs, and (report id, shard, attempt) triples for the
shards of a large report, to Arq workers through Redis; `InProcessQueue` (the embedded mode)
runs them as asyncio tasks in the API process. Either way the reports' state is in the
database, and `keep_up` sweeps it: takeovers, requeues, retention.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol
from uuid import UUID

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import in_progress_key_prefix
from arq.jobs import Job, JobStatus
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor import maintenance, reports, shards
from store_monitor.leases import JobState, Runner

log = logging.getLogger(__name__)

RUN_REPORT: Final = "run_report"
"""The Arq function name of the report job; its arguments: the report id as text, the attempt."""
RUN_SHARD: Final = "run_shard"
"""The Arq function name of a shard's job; its arguments: the report id as text, the shard, the
attempt."""


class QueueClosed(RuntimeError):
    pass


class ReportQueue(Protocol):
    async def enqueue_report(self, report_id: UUID, attempt: int) -> None:
        """Queue the job of the report's attempt; a no-op if that job is queued or running."""

    async def job_state(self, report_id: UUID, attempt: int) -> JobState: ...

    async def enqueue_shard(self, report_id: UUID, shard: int, attempt: int) -> None:
        """Queue the job of the shard's attempt; a no-op if that job is queued or running."""

    async def shard_state(self, report_id: UUID, shard: int, attempt: int) -> JobState: ...

    async def depth(self) -> int:
        """Report and shard jobs queued or running, not yet finished."""

    async def ping(self) -> None:
        """Raise if the queue cannot take jobs."""

    async def close(self) -> None: ...


def arq_job_timeout(job_timeout_seconds: float) -> float:
    """Arq's timeout of a job: ours, which the attempt enforces and records in its report, and
    a backstop for a job that does not give way when cancelled."""
    return job_timeout_seconds + _BACKSTOP_SECONDS


_BACKSTOP_SECONDS: Final = 60.0
# arq.worker: a started job's in-progress key lasts the longest job timeout and 10 s more.
_ARQ_IN_PROGRESS_EXTRA_SECONDS: Final = 10.0


@dataclass(frozen=True, slots=True)
class Staleness:
    """When a started job is stale (see `JobState.stale`)."""

    job_timeout_seconds: float
    """The workers' `job_timeout_seconds`: with it, how long Arq keeps a job in progress."""
    claim_seconds: float
    """A runner claims its work within this long of starting its job (the lease's length)."""


class ArqQueue:
    def __init__(
        self,
        redis: ArqRedis,
        *,
        queue_name: str,
        staleness: Staleness | None = None,
        owns_pool: bool = False,
    ) -> None:
        """Without `staleness`, no job is ever `stale`."""
        self._redis = redis
        self._queue_name = queue_name
        self._staleness = staleness
        self._owns_pool = owns_pool

    @classmethod
    async def connect(
        cls, redis_url: str, *, queue_name: str, staleness: Staleness | None = None
    ) -> "ArqQueue":
        pool = await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name=queue_name)
        return cls(pool, queue_name=queue_name, staleness=staleness, owns_pool=True)

    async def enqueue_report(self, report_id: UUID, attempt: int) -> None:
        # One Arq job id per attempt: Arq refuses a second job with the id of one it still has,
        # so an attempt is queued once however many sweeps see it due; and the next attempt is
        # not held up by the job of a dead worker, whose in-progress key Arq keeps for its
        # whole timeout.
        await self._redis.enqueue_job(
            RUN_REPORT,
            str(report_id),
            attempt,
            _job_id=job_id(report_id, attempt),
            _queue_name=self._queue_name,
        )

    async def enqueue_shard(self, report_id: UUID, shard: int, attempt: int) -> None:
        await self._redis.enqueue_job(
            RUN_SHARD,
            str(report_id),
            shard,
            attempt,
            _job_id=shard_job_id(report_id, shard, attempt),
            _queue_name=self._queue_name,
        )

    async def job_state(self, report_id: UUID, attempt: int) -> JobState:
        return await self._state(job_id(report_id, attempt))

    async def shard_state(self, report_id: UUID, shard: int, attempt: int) -> JobState:
        return await self._state(shard_job_id(report_id, shard, attempt))

    async def _state(self, arq_job_id: str) -> JobState:
        job = Job(arq_job_id, self._redis, _queue_name=self._queue_name)
        status = await job.status()
        if status in (JobStatus.queued, JobStatus.deferred):
            return JobState.waiting
        if status is JobStatus.in_progress:
            return await self._started_state(arq_job_id)
        if status is JobStatus.complete:
            return JobState.finished
        return JobState.missing

    async def _started_state(self, arq_job_id: str) -> JobState:
        if self._staleness is None:
            return JobState.running
        # The in-progress key's time to live says when the job started: it was set to Arq's
        # in-progress timeout then.
        left_ms = await self._redis.pttl(in_progress_key_prefix + arq_job_id)
        lasts = arq_job_timeout(self._staleness.job_timeout_seconds)
        started_ago = lasts + _ARQ_IN_PROGRESS_EXTRA_SECONDS - left_ms / 1000
        if left_ms > 0 and started_ago > self._staleness.claim_seconds:
            return JobState.stale
        return JobState.running

    async def depth(self) -> int:
        # Arq keeps a job in the queue's sorted set until it finishes, so this counts the jobs
        # waiting and those running, as the in-process queue does.
        return int(await self._redis.zcard(self._queue_name))

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        if self._owns_pool:
            await self._redis.aclose()


def job_id(report_id: UUID, attempt: int) -> str:
    return f"{report_id}:{attempt}"


def shard_job_id(report_id: UUID, shard: int, attempt: int) -> str:
    return f"{report_id}:shard-{shard}:{attempt}"


_Key = tuple[UUID, int | None, int]
"""(report, shard or None for the report's own job, attempt)."""


class InProcessQueue:
    """Runs report jobs as tasks of the current event loop, `concurrency` at a time.

    For the embedded mode, where there is one API process and no Redis. `close` cancels the
    jobs still running; each puts its report back to pending, to be swept up at the next start.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        runner: Runner,
        concurrency: int,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._runner = runner
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[_Key, asyncio.Task[None]] = {}
        self._closed = False

    async def enqueue_report(self, report_id: UUID, attempt: int) -> None:
        self._start((report_id, None, attempt))

    async def enqueue_shard(self, report_id: UUID, shard: int, attempt: int) -> None:
        self._start((report_id, shard, attempt))

    async def job_state(self, report_id: UUID, attempt: int) -> JobState:
        return JobState.running if (report_id, None, attempt) in self._tasks else JobState.missing

    async def shard_state(self, report_id: UUID, shard: int, attempt: int) -> JobState:
        return JobState.running if (report_id, shard, attempt) in self._tasks else JobState.missing

    async def depth(self) -> int:
        return len(self._tasks)

    async def ping(self) -> None:
        if self._closed:
            raise QueueClosed("the in-process job runner is shut down")

    async def close(self) -> None:
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _start(self, key: _Key) -> None:
        if self._closed:
            raise QueueClosed("the in-process job runner is shut down")
        if key in self._tasks:
            return
        task = asyncio.create_task(self._run(key), name=f"report-{key[0]}")
        self._tasks[key] = task
        task.add_done_callback(lambda done: self._forget(key, done))

    async def _run(self, key: _Key) -> None:
        report_id, shard, attempt = key
        async with self._slots:
            if shard is None:
                await reports.run_report(
                    self._sessionmaker,
                    report_id,
                    attempt,
                    self._runner,
                    enqueue_shard=self.enqueue_shard,
                )
            else:
                await shards.run_shard(self._sessionmaker, report_id, shard, attempt, self._runner)

    def _forget(self, key: _Key, task: asyncio.Task[None]) -> None:
        self._tasks.pop(key, None)
        # run_report records every failure in the report; what escapes it (say, the database
        # being down) would otherwise vanish with the task.
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("report %s: job crashed", key[0], exc_info=error)


@dataclass(frozen=True, kw_only=True, slots=True)
class Upkeep:
    """What every runner does every `interval_seconds`: see `keep_up`."""

    interval_seconds: float
    max_attempts: int
    retention: timedelta
    """Reports created longer ago are deleted."""
    poll_retention_days: int | None = None
    """Poll partitions of weeks older than this are dropped; None keeps every poll."""


async def keep_up(
    sessionmaker: async_sessionmaker[AsyncSession], queue: ReportQueue, upkeep: Upkeep
) -> None:
    """Forever, once every interval (the first after one: start-up does a round of its own):
    make the coming weeks' poll partitions and drop those past the poll retention, sweep the
    reports (takeovers, requeues, give-ups) and delete the expired ones.

    An error (the database or the queue away) is logged and the round tried again at the next
    interval, so the task outlives outages; cancel it to stop.
    """
    failing = False
    while True:
        await asyncio.sleep(upkeep.interval_seconds)
        try:
            await upkeep_round(sessionmaker, queue, upkeep)
        except Exception:
            # Once per outage with its stack, then quietly until it is over.
            if not failing:
                log.warning("periodic report sweep failed; trying again", exc_info=True)
            failing = True
        else:
            if failing:
                log.info("periodic report sweep works again")
            failing = False


async def upkeep_round(
    sessionmaker: async_sessionmaker[AsyncSession], queue: ReportQueue, upkeep: Upkeep
) -> reports.Sweep:
    await maintenance.maintain_poll_partitions(
        sessionmaker, now=datetime.now(UTC), retention_days=upkeep.poll_retention_days
    )
    swept = await reports.sweep(
        sessionmaker,
        look_up=queue.job_state,
        enqueue=queue.enqueue_report,
        max_attempts=upkeep.max_attempts,
    )
    await shards.sweep(
        sessionmaker,
        look_up=queue.shard_state,
        enqueue=queue.enqueue_shard,
        max_attempts=upkeep.max_attempts,
    )
    cutoff = datetime.now(UTC) - upkeep.retention
    if deleted := await reports.delete_reports_created_before(sessionmaker, cutoff):
        log.info(
            "deleted %d reports created before %s (retention)", deleted, f"{cutoff:%Y-%m-%d %H:%M}"
        )
    return swept
