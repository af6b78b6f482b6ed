"""Test doubles and shortcuts for the leased-work layer."""

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor import reports
from store_monitor.work.queue import JobState, WorkQueue
from store_monitor.work.table import Key


class RecordingQueue:
    """A queue that runs nothing: it records what is queued, and answers `state` by
    `states(kind, key, attempt)` (by default: never queued)."""

    def __init__(self, states: Callable[[str, Key, int], JobState] | None = None) -> None:
        self.queued: list[tuple[str, Key, int]] = []
        self._states = states

    async def enqueue(
        self, kind: str, key: Key, attempt: int, *, due_at: datetime | None = None
    ) -> None:
        self.queued.append((kind, key, attempt))

    async def state(self, kind: str, key: Key, attempt: int) -> JobState:
        return JobState.missing if self._states is None else self._states(kind, key, attempt)

    async def depth(self) -> int:
        return len(self.queued)

    async def ping(self) -> None:
        pass

    async def close(self) -> None:
        pass


async def create_report(
    sessions: async_sessionmaker[AsyncSession],
    queue: WorkQueue,
    *,
    as_of: datetime | None = None,
    idempotency_key: str | None = None,
) -> reports.Created:
    """`reports.create_report` in a session of its own, as a request's."""
    async with sessions() as session:
        return await reports.create_report(
            session, queue, as_of=as_of, idempotency_key=idempotency_key
        )
