"""What carries attempts to runners: the queue interface, and the in-process queue of the
embedded mode (Arq's is in `store_monitor.work.arq`).

A queue carries (kind, key, attempt) and nothing else: the work's state is in the database, so
a lost job costs only time (the sweep queues the attempt again).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from store_monitor.db.models import ReportStatus
from store_monitor.work.table import Key, WorkTable

log = logging.getLogger(__name__)


class JobState(StrEnum):
    """What a queue knows of the job of one attempt."""

    waiting = "waiting"
    running = "running"
    finished = "finished"
    missing = "missing"
    """The queue never had the job, or has forgotten it."""
    stale = "stale"
    """Started longer ago than a runner takes to claim its work: if its attempt has not claimed
    the work, its runner died as it started (the queue keeps such a job for its whole timeout)."""


class QueueClosed(RuntimeError):
    pass


class WorkQueue(Protocol):
    async def enqueue(
        self, kind: str, key: Key, attempt: int, *, due_at: datetime | None = None
    ) -> None:
        """Queue the job of attempt `attempt` at the `kind` work keyed `key`, to start at
        `due_at` (None: now); a no-op if that attempt's job is queued or running."""

    async def state(self, kind: str, key: Key, attempt: int) -> JobState: ...

    async def depth(self) -> int:
        """Jobs queued or running, not yet finished."""

    async def ping(self) -> None:
        """Raise if the queue cannot take jobs."""

    async def close(self) -> None: ...


def job_id(kind: str, key: Key, attempt: int) -> str:
    """One job id per attempt: queues refuse a second job with the id of one they still have."""
    return ":".join([kind, *map(str, key), str(attempt)])


async def queue_attempt(
    queue: WorkQueue, table: WorkTable, key: Key, attempt: int, *, due_at: datetime | None = None
) -> None:
    """Queue the job of attempt `attempt` at the row of `table` keyed `key` (committed: a fast
    runner would not find it otherwise). A queue that cannot take the job (Redis away) is no
    error: the row waits, pending, and the sweep queues the attempt when it can."""
    try:
        await queue.enqueue(table.kind, key, attempt, due_at=due_at)
    except Exception:
        label = table.label(key)
        log.warning("%s: could not queue attempt %d; the sweep will", label, attempt, exc_info=True)


Handler = Callable[[Key, int], Awaitable[ReportStatus | None]]
"""Make attempt `attempt` at the work keyed `key`: the status it left the work with, if it ran."""
_Job = tuple[str, Key, int]


class InProcessQueue:
    """Runs jobs as tasks of the current event loop, `concurrency` at a time, each by its kind's
    handler in `handlers` (filled by its maker: handlers may queue more jobs on it).

    For the embedded mode, where there is one API process and no Redis. `close` cancels the
    jobs still running; each gives its work back (pending), to be swept up at the next start.
    """

    def __init__(self, *, concurrency: int) -> None:
        self.handlers: dict[str, Handler] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[_Job, asyncio.Task[None]] = {}
        self._closed = False

    async def enqueue(
        self, kind: str, key: Key, attempt: int, *, due_at: datetime | None = None
    ) -> None:
        if self._closed:
            raise QueueClosed("the in-process job runner is shut down")
        job = (kind, key, attempt)
        if job in self._tasks:
            return
        handler = self.handlers[kind]
        task = asyncio.create_task(self._run(handler, key, attempt, due_at), name=job_id(*job))
        self._tasks[job] = task
        task.add_done_callback(lambda done: self._forget(job, done))

    async def state(self, kind: str, key: Key, attempt: int) -> JobState:
        return JobState.running if (kind, key, attempt) in self._tasks else JobState.missing

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

    async def _run(self, handler: Handler, key: Key, attempt: int, due_at: datetime | None) -> None:
        if due_at is not None:
            await asyncio.sleep(max((due_at - datetime.now(UTC)).total_seconds(), 0.0))
        async with self._slots:
            await handler(key, attempt)

    def _forget(self, job: _Job, task: asyncio.Task[None]) -> None:
        self._tasks.pop(job, None)
        # An attempt records every failure in its work; what escapes it (say, the database
        # being down) would otherwise vanish with the task.
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("%s: job crashed", job_id(*job), exc_info=error)
