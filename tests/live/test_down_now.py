"""`live.down_now` reads the stores down now and their N in one snapshot: an evaluation that
commits while it reads cannot pair the stores before it with the N after it."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor import live

from .conftest import Sessions, evaluate, ingest_polls, polls

T0 = datetime(2023, 1, 20, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


class CommitBetweenStatements:
    """A session whose first statement is followed by `between` (another transaction's commit),
    as a concurrent evaluation could."""

    def __init__(self, session: AsyncSession, between: Callable[[], Awaitable[Any]]) -> None:
        self._session = session
        self._between: Callable[[], Awaitable[Any]] | None = between

    async def _after(self, result: Any) -> Any:
        if self._between is not None:
            between, self._between = self._between, None
            await between()
        return result

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return await self._after(await self._session.execute(*args, **kwargs))

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return await self._after(await self._session.scalar(*args, **kwargs))


async def test_an_evaluation_committing_meanwhile_is_seen_whole_or_not_at_all(
    sessions: Sessions,
) -> None:
    await ingest_polls(sessions, polls(("a", "active", at(0)), ("a", "inactive", at(1))))
    await evaluate(sessions)
    async with sessions() as session:
        view = await live.down_now(session, owner_id=None)
    assert (view.now, [s.store_id for s in view.stores]) == (at(1), ["a"])
    # Up again: the pending evaluation will say so, at a later N.
    await ingest_polls(sessions, polls(("a", "active", at(2))))

    async with sessions() as session:
        await session.connection()  # a READ COMMITTED transaction, as a request's
        racing = CommitBetweenStatements(session, lambda: evaluate(sessions))
        view = await live.down_now(cast(AsyncSession, racing), owner_id=None)

    # As before the evaluation committed (not caught up with the poll at 2 h): its N and its
    # stores, not the stores before it with the N after it.
    assert (view.now, view.latest_poll_at, view.total) == (at(1), at(2), 1)
    assert [(s.store_id, s.since, s.minutes) for s in view.stores] == [("a", at(0.5), 30.0)]
    async with sessions() as session:
        after = await live.down_now(session, owner_id=None)
    assert (after.now, after.total, after.stores) == (at(2), 0, [])
