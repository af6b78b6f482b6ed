"""How many reports a key may trigger: the `limits` library's moving window, counted in Redis
when the service has one (shared by every API process) and in this process otherwise.

One limiter for the API's `POST /trigger_report` and the dashboard's "new report" button. It
counts per API key, or per client address with authentication off. A limiter whose Redis is
unreachable lets triggers through (and logs it): Redis is only the transport of the service,
and a trigger made while it is away waits, pending, for the sweep.
"""

import logging
import math
import time
from typing import Final

import limits
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import BlockingConnectionPool
from starlette.requests import Request
from starlette.status import HTTP_429_TOO_MANY_REQUESTS

from store_monitor.access import Principal
from store_monitor.web.errors import ApiError

log = logging.getLogger(__name__)

_REDIS_CONNECTIONS: Final = 16
"""Connections to Redis per process at most: a burst of triggers waits for one, briefly."""
_REDIS_TIMEOUT_SECONDS: Final = 0.5
"""How long a check may wait on Redis (to connect, for an answer, for a free connection)."""


class TriggerLimiter:
    """Counts triggers against `rate` (`10/minute`, `5/second;100/hour`) per key or address."""

    def __init__(self, rate: str, *, redis_url: str | None, namespace: str) -> None:
        self._rates = limits.parse_many(rate)
        self._pool: BlockingConnectionPool | None = None
        storage: Storage
        if redis_url is None:
            storage = MemoryStorage()
        else:
            self._pool = BlockingConnectionPool.from_url(
                redis_url,
                max_connections=_REDIS_CONNECTIONS,
                timeout=_REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=_REDIS_TIMEOUT_SECONDS,
                socket_timeout=_REDIS_TIMEOUT_SECONDS,
            )
            storage = RedisStorage(
                "async+" + redis_url,
                implementation="redispy",
                wrap_exceptions=True,
                # Deployments sharing a Redis keep apart as their queues do.
                key_prefix=f"{namespace}:trigger-rate",
                # Passed on to redis-py's client, which the option's annotation leaves out.
                connection_pool=self._pool,  # type: ignore[arg-type]
            )
        self._limiter = MovingWindowRateLimiter(storage)

    async def retry_after(self, principal: Principal, request: Request) -> int | None:
        """Count one trigger by `principal`; None if it is within the rate, else the seconds
        until the next one is allowed (and this one is not counted)."""
        if principal.key_id is not None:
            who = f"key:{principal.key_id}"
        else:
            who = f"address:{request.client.host if request.client else 'unknown'}"
        try:
            for rate in self._rates:
                if not await self._limiter.hit(rate, who):
                    reset_at, _ = await self._limiter.get_window_stats(rate, who)
                    return max(1, math.ceil(reset_at - time.time()))
        except StorageError as error:
            log.warning(
                "trigger rate not checked (Redis: %s); the trigger is let through",
                error.storage_error,
            )
        return None

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


def too_many_triggers(wait: int) -> ApiError:
    return ApiError(
        HTTP_429_TOO_MANY_REQUESTS,
        "too_many_triggers",
        f"this key triggered too many reports; retry in {wait} s",
        {"retry_after_seconds": wait},
        headers={"Retry-After": str(wait)},
    )
