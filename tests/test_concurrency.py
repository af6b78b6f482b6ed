"""`gather_all`: every awaitable ends before its caller goes on, whatever ends first."""

import asyncio

import pytest

from store_monitor.concurrency import gather_all


async def test_results_in_order() -> None:
    async def value(number: int) -> int:
        await asyncio.sleep(0.01 * (3 - number))
        return number

    assert await gather_all(value(1), value(2), value(3)) == [1, 2, 3]


async def test_an_error_is_raised_once_the_others_have_ended() -> None:
    ended: list[str] = []

    async def fails() -> None:
        raise ValueError("bad")

    async def slow() -> None:
        await asyncio.sleep(0.1)
        ended.append("slow")

    with pytest.raises(ValueError, match="bad"):
        await gather_all(fails(), slow())
    assert ended == ["slow"]


async def test_a_cancelled_caller_waits_for_each_ones_last_write() -> None:
    started = asyncio.Event()
    written: list[int] = []

    async def gives_back(number: int) -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            # As an attempt gives its work back: shielded, and longer for the second one.
            await asyncio.shield(asyncio.sleep(0.05 * number))
            written.append(number)

    caller = asyncio.create_task(gather_all(gives_back(1), gives_back(2)))
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert sorted(written) == [1, 2]
