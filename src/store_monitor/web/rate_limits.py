"""How often a key may do what costs the service work at its asking: trigger a report
(`trigger_rate`), send a webhook a test event (`webhook_test_rate`). The `limits` library's
moving window, counted in Redis when the service has one (shared by every API process) and in
this process otherwise.

Each limiter counts per API key, or per client address with authentication off. The trigger's
is checked before the key itself, so that a flood of refused triggers never waits for (or holds)
a database connection; each process remembers whom it refused until when, so that their further
requests are refused without asking Redis either.

Each process also counts what it lets through in its own memory, against the same rate. With
Redis that is only a cheap first check; when Redis fails or lags (an outage, or a process so
busy that its answers time out), the process's own count still holds: nothing is let through
uncounted (triggers made while Redis is away wait, pending, for the sweep).
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

from store_monitor.web.errors import ApiError

log = logging.getLogger(__name__)

_REDIS_CONNECTIONS: Final = 32
"""Connections to Redis per limiter and process at most: a burst queues for them (as long as
it takes: a busy process is no reason to let requests through uncounted)."""
_REDIS_TIMEOUT_SECONDS: Final = 2.0
"""How long a check may wait on Redis itself, to connect and for an answer."""
_UNCHECKED_SECONDS: Final = 5.0
"""After Redis failed a check, how long requests are counted in the process alone: an outage
costs each request nothing, rather than a timeout each."""
_MAX_REMEMBERED: Final = 10_000
"""Refusals remembered in the process before the past ones are forgotten."""


class RateLimiter:
    """Counts one kind of request (`counts`: `trigger`, `webhook-test`) against `rate`
    (`10/minute`, `5/second;100/hour`) per key or address."""

    def __init__(self, rate: str, *, counts: str, redis_url: str | None, namespace: str) -> None:
        self._counts = counts
        self._rates = limits.parse_many(rate)
        self._pool: BlockingConnectionPool | None = None
        storage: Storage
        if redis_url is None:
            storage = MemoryStorage()
        else:
            self._pool = BlockingConnectionPool.from_url(
                redis_url,
                max_connections=_REDIS_CONNECTIONS,
                timeout=None,
                socket_connect_timeout=_REDIS_TIMEOUT_SECONDS,
                socket_timeout=_REDIS_TIMEOUT_SECONDS,
            )
            storage = RedisStorage(
                "async+" + redis_url,
                implementation="redispy",
                wrap_exceptions=True,
                # Deployments sharing a Redis keep apart as their queues do.
                key_prefix=f"{namespace}:{counts}-rate",
                # Passed on to redis-py's client, which the option's annotation leaves out.
                connection_pool=self._pool,  # type: ignore[arg-type]
            )
        self._limiter = MovingWindowRateLimiter(storage)
        self._in_process = (
            self._limiter if redis_url is None else MovingWindowRateLimiter(MemoryStorage())
        )
        self._unchecked_until = 0.0
        self._refused_until: dict[str, float] = {}
        """Who was refused, until when: in a moving window nobody over the rate gets under it
        before its oldest counted request leaves, so a burst's refusals need no Redis."""

    async def retry_after(self, counted_as: str) -> int | None:
        """Count one request under `counted_as` (see `counted_as`); None if it is within the
        rate, else the seconds until the next one is allowed (and this one is not counted)."""
        now = time.time()
        refused_until = self._refused_until.get(counted_as, 0.0)
        if now < refused_until:
            return max(1, math.ceil(refused_until - now))
        wait = await self._hit(self._in_process, counted_as)
        if wait is not None or self._in_process is self._limiter:
            return wait
        if time.monotonic() < self._unchecked_until:
            return None
        try:
            return await self._hit(self._limiter, counted_as)
        except StorageError as error:
            self._unchecked_until = time.monotonic() + _UNCHECKED_SECONDS
            log.warning(
                "%s rate not checked in Redis (%s); counted in this process alone for %.0f s",
                self._counts,
                error.storage_error,
                _UNCHECKED_SECONDS,
            )
        return None

    async def _hit(self, limiter: MovingWindowRateLimiter, counted_as: str) -> int | None:
        for rate in self._rates:
            if not await limiter.hit(rate, counted_as):
                reset_at, _ = await limiter.get_window_stats(rate, counted_as)
                self._refused(counted_as, reset_at)
                return max(1, math.ceil(reset_at - time.time()))
        return None

    def _refused(self, counted_as: str, until: float) -> None:
        if len(self._refused_until) >= _MAX_REMEMBERED:
            now = time.time()
            self._refused_until = {k: t for k, t in self._refused_until.items() if t > now}
        self._refused_until[counted_as] = until

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


def counted_as(request: Request, key_hash: bytes | None) -> str:
    """Whose requests these are: the key's (by its stored hash, which the API computes from
    the presented secret before it asks the database, so that a refused trigger costs no
    database work), or the client address's with authentication off."""
    if key_hash is not None:
        return "key:" + key_hash.hex()
    return "address:" + (request.client.host if request.client else "unknown")


def too_many_triggers(wait: int) -> ApiError:
    return _over_rate("too_many_triggers", "this key triggered too many reports", wait)


def too_many_webhook_tests(wait: int) -> ApiError:
    return _over_rate("too_many_webhook_tests", "this key sent too many test events", wait)


def _over_rate(code: str, doing: str, wait: int) -> ApiError:
    return ApiError(
        HTTP_429_TOO_MANY_REQUESTS,
        code,
        f"{doing}; retry in {wait} s",
        {"retry_after_seconds": wait},
        headers={"Retry-After": str(wait)},
    )
