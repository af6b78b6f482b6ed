"""A small in-memory limiter of failed authentications per client address, one per process."""

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

DEFAULT_BURST: Final = 10
"""Failures an address may have in a row before it must wait."""
DEFAULT_PER_MINUTE: Final = 10.0
"""Failures an address earns back per minute."""
_MAX_ADDRESSES: Final = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class FailureLimiter:
    """A token bucket per address, spent by failures only: a client with a valid key is never
    slowed, one guessing keys gets `burst` tries and then `per_minute` a minute.

    Per process and bounded (the longest-quiet addresses are forgotten first): with several API
    processes an address gets that many tries at each, which still makes guessing hopeless
    against 256-bit secrets; the point is to keep floods of bad keys off the database.
    """

    def __init__(
        self,
        *,
        burst: int = DEFAULT_BURST,
        per_minute: float = DEFAULT_PER_MINUTE,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = _MAX_ADDRESSES,
    ) -> None:
        self._burst = float(burst)
        self._per_second = per_minute / 60.0
        self._clock = clock
        self._max_addresses = max_addresses
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def retry_after(self, address: str) -> int | None:
        """Seconds `address` must wait before its next try, or None if it may try now."""
        bucket = self._refilled(address)
        if bucket is None or bucket.tokens >= 1.0:
            return None
        return max(1, math.ceil((1.0 - bucket.tokens) / self._per_second))

    def failed(self, address: str) -> None:
        bucket = self._refilled(address) or _Bucket(tokens=self._burst, at=self._clock())
        bucket.tokens = max(0.0, bucket.tokens - 1.0)
        self._buckets[address] = bucket
        self._buckets.move_to_end(address)
        while len(self._buckets) > self._max_addresses:
            self._buckets.popitem(last=False)

    def _refilled(self, address: str) -> _Bucket | None:
        bucket = self._buckets.get(address)
        if bucket is None:
            return None
        now = self._clock()
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._per_second)
        bucket.at = now
        if bucket.tokens >= self._burst:
            del self._buckets[address]  # as good as new: nothing to remember
        return bucket
