"""What routes get injected: the lifespan's typed state, a transactional session, the queue."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from store_monitor.settings import Settings
from store_monitor.web.limits import FailureLimiter
from store_monitor.web.observability import Metrics
from store_monitor.web.trigger_rate import TriggerLimiter
from store_monitor.work.queue import WorkQueue

STATE_KEY: Final = "store_monitor"


@dataclass(frozen=True, kw_only=True, slots=True)
class AppState:
    """Built by the lifespan, once per process; the only place the engine and queue live."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    queue: WorkQueue
    metrics: Metrics
    session_secret: bytes
    """Signs the dashboard's session cookies: the server's secret key, or one of this process."""
    limiter: FailureLimiter
    """Failed authentications per client address, in this process."""
    trigger_limiter: TriggerLimiter
    """Reports triggered per key (or address), in Redis if there is one."""
    sample_loaded: bool = False
    """Whether the embedded mode's sample is in the database (the pages say so)."""


# The dependencies that only read what the request holds are `async def`: FastAPI runs a plain
# `def` one in its thread pool, a hop to another thread on every request for no blocking work.
async def get_state(request: Request) -> AppState:
    state = getattr(request.state, STATE_KEY)
    assert isinstance(state, AppState)
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


async def get_queue(state: StateDep) -> WorkQueue:
    return state.queue


async def get_metrics(state: StateDep) -> Metrics:
    return state.metrics


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    """The request's one transaction: committed when the route returns, rolled back if it raises."""
    async with state.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


SettingsDep = Annotated[Settings, Depends(get_settings)]
QueueDep = Annotated[WorkQueue, Depends(get_queue)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
# scope="function": the commit happens before the response is sent, so a client that got a
# success can rely on it; a failed commit is the client's error response, not a lost write.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
