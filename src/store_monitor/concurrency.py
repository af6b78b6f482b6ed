"""Running awaitables side by side, each ended before its caller goes on."""

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def gather_all(*awaitables: Awaitable[T]) -> list[T]:
    """Their results, in order, once every one has ended; then the first error, if any.

    Unlike `asyncio.gather` without `return_exceptions`, which returns (or is cancelled) at the
    first one that fails or is cancelled while the others run on: those may still hold a
    connection the caller is about to close, or a write their cancellation started.
    """
    outcomes = await asyncio.gather(*awaitables, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return outcomes  # type: ignore[return-value]  # no exceptions left
