"""The report queue: job names and the two ways a report's job gets run.

`ArqQueue` hands report ids to Arq workers through Redis; `InProcessQueue` (the embedded mode)
runs them as asyncio tasks in the API process. Either way the report's state is in the database.
"""

import asyncio
import logging
from typing import Final, Protocol
from uuid import UUID

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import Job, JobStatus
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor import reports
from store_monitor.reports import JobInfo, JobState

log = logging.getLogger(__name__)

RUN_REPORT: Final = "run_report"
"""The Arq function name of the report job; its one argument is the report id as text."""


class QueueClosed(RuntimeError):
    pass


class ReportQueue(Protocol):
    async def enqueue_report(self, report_id: UUID) -> None:
        """Queue the report's job; a no-op if that report's job is already queued or running."""

    async def job_info(self, report_id: UUID) -> JobInfo: ...

    async def depth(self) -> int:
        """Report jobs queued or running, not yet finished."""

    async def ping(self) -> None:
        """Raise if the queue cannot take jobs."""

    async def close(self) -> None: ...


class ArqQueue:
    def __init__(self, redis: ArqRedis, *, queue_name: str, owns_pool: bool = False) -> None:
        self._redis = redis
        self._queue_name = queue_name
        self._owns_pool = owns_pool

    @classmethod
    async def connect(cls, redis_url: str, *, queue_name: str) -> "ArqQueue":
        pool = await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name=queue_name)
        return cls(pool, queue_name=queue_name, owns_pool=True)

    async def enqueue_report(self, report_id: UUID) -> None:
        # The report id as Arq's job id: Arq refuses a second job with the id of one it still
        # has (queued, running, or finished with its result kept), so no report runs twice at once.
        await self._redis.enqueue_job(
            RUN_REPORT, str(report_id), _job_id=str(report_id), _queue_name=self._queue_name
        )

    async def job_info(self, report_id: UUID) -> JobInfo:
        job = Job(str(report_id), self._redis, _queue_name=self._queue_name)
        status = await job.status()
        if status in (JobStatus.queued, JobStatus.deferred):
            return JobInfo(JobState.waiting)
        if status is JobStatus.in_progress:
            return JobInfo(JobState.running)
        if status is JobStatus.complete:
            result = await job.result_info()
            outcome = None if result is None else _outcome(result.success, result.result)
            return JobInfo(JobState.finished, outcome)
        return JobInfo(JobState.missing)

    async def depth(self) -> int:
        # Arq keeps a job in the queue's sorted set until it finishes, so this counts the jobs
        # waiting and those running, as the in-process queue does.
        return int(await self._redis.zcard(self._queue_name))

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        if self._owns_pool:
            await self._redis.aclose()


def _outcome(success: bool, result: object) -> str:
    if success:
        return "succeeded"
    if isinstance(result, BaseException):
        text = str(result).strip()
        return f"{type(result).__name__}: {text}" if text else type(result).__name__
    return repr(result)


class InProcessQueue:
    """Runs report jobs as tasks of the current event loop, `concurrency` at a time.

    For the embedded mode, where there is one API process and no Redis. `close` cancels the
    jobs still running; each puts its report back to pending, to be swept up at the next start.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        timeout_seconds: float,
        max_attempts: int,
        concurrency: int,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._timeout_seconds = timeout_seconds
        self._max_attempts = max_attempts
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[UUID, asyncio.Task[None]] = {}
        self._closed = False

    async def enqueue_report(self, report_id: UUID) -> None:
        if self._closed:
            raise QueueClosed("the in-process job runner is shut down")
        if report_id in self._tasks:
            return
        task = asyncio.create_task(self._run(report_id), name=f"report-{report_id}")
        self._tasks[report_id] = task
        task.add_done_callback(lambda done: self._forget(report_id, done))

    async def job_info(self, report_id: UUID) -> JobInfo:
        return JobInfo(JobState.running if report_id in self._tasks else JobState.missing)

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

    async def _run(self, report_id: UUID) -> None:
        async with self._slots:
            await reports.run_report(
                self._sessionmaker,
                report_id,
                timeout_seconds=self._timeout_seconds,
                max_attempts=self._max_attempts,
            )

    def _forget(self, report_id: UUID, task: asyncio.Task[None]) -> None:
        self._tasks.pop(report_id, None)
        # run_report records every failure in the report; what escapes it (say, the database
        # being down) would otherwise vanish with the task.
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("report %s: job crashed", report_id, exc_info=error)
