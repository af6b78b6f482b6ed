"""Arq, behind one adapter: the queue over Redis, and the worker that outlasts Redis outages.

Everything here beyond Arq's public API (the version is pinned in pyproject.toml, and
tests/worker/test_arq_internals.py fails if these change): a started job's in-progress key
(`arq.constants.in_progress_key_prefix`), whose time to live Arq sets to the longest job
timeout plus 10 s; `Worker._poll_iteration`, the one round of its poll loop; its `max_jobs`,
which a round checks before it starts each job; and its `tasks`, the jobs it runs, which its
`close` waits for.

Neither a queueing nor a round of the poll loop is cut short by a cancellation: redis-py's
pipelines are not cancel-safe (one cancelled as it unwatches its keys keeps its connection,
checked out for good), and both watch keys in one. They are short, so a stop waits for them.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from datetime import datetime
from typing import Any, Final, TypeVar
from uuid import UUID

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import in_progress_key_prefix
from arq.jobs import Job, JobStatus
from arq.worker import Worker
from redis.exceptions import RedisError

from store_monitor.work.queue import JobState, job_id
from store_monitor.work.table import Key, WorkTable

log = logging.getLogger(__name__)

T = TypeVar("T")

ARQ_IN_PROGRESS_EXTRA_SECONDS: Final = 10.0
"""arq.worker: a started job's in-progress key lasts the longest job timeout and this more."""
_BACKSTOP_SECONDS: Final = 60.0


def arq_job_timeout(job_timeout_seconds: float) -> float:
    """Arq's timeout of a job: ours, which the attempt enforces and records in its work, and a
    backstop for a job that does not give way when cancelled."""
    return job_timeout_seconds + _BACKSTOP_SECONDS


def key_of(table: WorkTable, arguments: list[str | int]) -> Key:
    """The key of a row of `table` from its job's arguments, as `ArqQueue.enqueue` wrote them."""
    return tuple(
        column.type.python_type(value) for column, value in zip(table.key, arguments, strict=True)
    )


class ArqQueue:
    """The queue over Redis. With `claim_seconds`, a job in progress for longer than that (by
    its in-progress key) is `stale`; without it, no job is ever stale."""

    def __init__(
        self,
        redis: ArqRedis,
        *,
        queue_name: str,
        job_timeout_seconds: float,
        claim_seconds: float | None = None,
        owns_pool: bool = False,
    ) -> None:
        self._redis = redis
        self._queue_name = queue_name
        self._job_timeout_seconds = job_timeout_seconds
        self._claim_seconds = claim_seconds
        self._owns_pool = owns_pool
        self._uncut: set[asyncio.Future[Any]] = set()

    @classmethod
    async def connect(
        cls,
        redis_url: str,
        *,
        queue_name: str,
        job_timeout_seconds: float,
        claim_seconds: float | None = None,
    ) -> "ArqQueue":
        pool = await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name=queue_name)
        return cls(
            pool,
            queue_name=queue_name,
            job_timeout_seconds=job_timeout_seconds,
            claim_seconds=claim_seconds,
            owns_pool=True,
        )

    async def enqueue(
        self, kind: str, key: Key, attempt: int, *, due_at: datetime | None = None
    ) -> None:
        # One job id per attempt: Arq refuses a second job with the id of one it still has, so
        # an attempt is queued once however many sweeps see it due; and the next attempt is not
        # held up by the job of a dead worker, whose in-progress key Arq keeps for its timeout.
        arguments = [str(value) if isinstance(value, UUID) else value for value in key]
        enqueuing = self._redis.enqueue_job(
            kind,
            *arguments,
            attempt,
            _job_id=job_id(kind, key, attempt),
            _queue_name=self._queue_name,
            _defer_until=due_at,
        )
        await self._to_the_end(enqueuing)

    async def _to_the_end(self, operation: Awaitable[T]) -> T:
        """`operation`'s result; a cancelled caller leaves it running to its end, which
        `close` waits for."""
        running = asyncio.ensure_future(operation)
        self._uncut.add(running)
        running.add_done_callback(self._uncut.discard)
        return await asyncio.shield(running)

    async def state(self, kind: str, key: Key, attempt: int) -> JobState:
        arq_job_id = job_id(kind, key, attempt)
        status = await Job(arq_job_id, self._redis, _queue_name=self._queue_name).status()
        if status in (JobStatus.queued, JobStatus.deferred):
            return JobState.waiting
        if status is JobStatus.in_progress:
            return await self._started_state(arq_job_id)
        if status is JobStatus.complete:
            return JobState.finished
        return JobState.missing

    async def _started_state(self, arq_job_id: str) -> JobState:
        if self._claim_seconds is None:
            return JobState.running
        # The in-progress key's time to live says when the job started: it was set to Arq's
        # in-progress timeout then.
        left_ms = await self._redis.pttl(in_progress_key_prefix + arq_job_id)
        lasts = arq_job_timeout(self._job_timeout_seconds) + ARQ_IN_PROGRESS_EXTRA_SECONDS
        if left_ms > 0 and lasts - left_ms / 1000 > self._claim_seconds:
            return JobState.stale
        return JobState.running

    async def depth(self) -> int:
        # Arq keeps a job in the queue's sorted set until it finishes, so this counts the jobs
        # waiting and those running, as the in-process queue does.
        return int(await self._redis.zcard(self._queue_name))

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await asyncio.gather(*self._uncut, return_exceptions=True)
        if self._owns_pool:
            await self._redis.aclose()


class OutlastingWorker(Worker):
    """An Arq worker that outlasts Redis outages.

    Arq's poll loop lets a Redis error end the worker (and with it every job it runs). Here a
    failed poll is logged and tried again after a growing pause (0.1 s doubling up to
    `_MAX_PAUSE_SECONDS`); redis-py reconnects by itself on the next command, and the jobs
    queued meanwhile are picked up at the first poll that works. Running jobs go on.

    A stop lets the round under way end (see the module's note), taking no more jobs, and
    cancels the jobs it started meanwhile; closing waits for every job, however it ends.
    """

    _MAX_PAUSE_SECONDS: Final = 5.0

    _pause: float = 0.0

    async def _poll_iteration(self) -> None:
        try:
            await self._uncut_round()
        except (RedisError, OSError) as error:
            self._pause = min(max(self._pause * 2, 0.1), self._MAX_PAUSE_SECONDS)
            log.warning(
                "lost Redis (%s: %s); retrying in %.1f s",
                type(error).__name__,
                error,
                self._pause,
            )
            await asyncio.sleep(self._pause)
            return
        if self._pause:
            log.info("Redis is back; polling the queue again")
            self._pause = 0.0

    async def close(self) -> None:
        # Arq's close waits for the jobs with a gather that one ending cancelled breaks, skipping
        # the shutdown; a job cancelled before it has read its job data does (Arq catches the
        # cancellation only after), and nothing is lost: it had not claimed its work.
        self._cancel_jobs()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self.tasks.clear()
        await super().close()

    def _cancel_jobs(self) -> None:
        # Not those cancelled already: they are giving their work back, which a second
        # cancellation would cut.
        for job in self.tasks.values():
            if not job.cancelling():
                job.cancel()

    async def _uncut_round(self) -> None:
        round_ = asyncio.ensure_future(super()._poll_iteration())
        try:
            await asyncio.shield(round_)
        except asyncio.CancelledError:
            self.max_jobs = 0
            with contextlib.suppress(Exception):
                await round_
            self._cancel_jobs()  # those it started after the stop
            raise
