"""What routes get injected: the lifespan's typed state, a transactional session, the queue."""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, TypeVar

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from store_monitor.settings import Settings
from store_monitor.web.downloads import InflatedFiles
from store_monitor.web.failed_auth import FailureLimiter
from store_monitor.web.observability import Metrics
from store_monitor.web.rate_limits import RateLimiter
from store_monitor.work.queue import WorkQueue

STATE_KEY: Final = "store_monitor"


@dataclass(frozen=True, kw_only=True, slots=True)
class AppState:
    """Built by the lifespan, once per process; the only place the engine and queue live."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    autocommit_sessionmaker: async_sessionmaker[AsyncSession]
    """Sessions on the same pool whose statements each commit alone (`statements_commit_alone`)."""
    queue: WorkQueue
    metrics: Metrics
    session_secret: bytes
    """Signs the dashboard's session cookies: the server's secret key, or one of this process."""
    limiter: FailureLimiter
    """Failed authentications per client address, in this process."""
    trigger_limiter: RateLimiter
    """Reports triggered per key (or address), in Redis if there is one."""
    webhook_test_limiter: RateLimiter
    """Webhook test events sent per key (or address), in Redis if there is one."""
    sample_loaded: bool = False
    """Whether the embedded mode's sample is in the database (the pages say so)."""
    inflated_files: InflatedFiles = field(default_factory=InflatedFiles)


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


_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])
_AUTOCOMMIT: Final = "store_monitor_autocommit"


def statements_commit_alone(endpoint: _Endpoint) -> _Endpoint:
    """Marks a route whose statements each commit on their own, with no transaction around them:
    for a read of rows that need not come from one snapshot (the key, then a report). It saves
    the BEGIN and COMMIT round trips, about a seventh of the CPU of the most frequent request,
    the status poll."""
    setattr(endpoint, _AUTOCOMMIT, True)
    return endpoint


async def get_session(request: Request, state: StateDep) -> AsyncIterator[AsyncSession]:
    """The request's one transaction: committed when the route returns, rolled back if it raises.
    For a route marked `statements_commit_alone`, a session whose statements commit each alone."""
    # The router puts the matched route's endpoint in the request's scope.
    autocommit = getattr(request.scope.get("endpoint"), _AUTOCOMMIT, False)
    sessions = state.autocommit_sessionmaker if autocommit else state.sessionmaker
    async with sessions() as session:
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
