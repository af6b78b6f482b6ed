"""Validated input into the database: frames (from `store_monitor.sources`), or CSV bytes read
and stored a chunk at a time, so that a file of any size loads in bounded memory.

Polls are added (a re-ingested poll adds nothing); business hours and time zones replace the
rows of the stores present in the new file, store owners the memberships of its owners. Every
load is a step of the caller's transaction: it flushes and never commits, so a load that fails
part-way (a bad row in its last chunk) leaves nothing behind once the caller rolls back. A value
the database refuses (one the readers let through) is a `ValueRefused` naming the table and,
where the database says, the store: bad data, not a bug.
"""

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.ingest.loads import IngestResult, Load, Prepared, ValueRefused
from store_monitor.ingest.polls import PollsLoad
from store_monitor.ingest.replacing import HoursLoad, OwnersLoad, TimezonesLoad
from store_monitor.sources import (
    HOURS_CSV,
    OWNERS_CSV,
    POLLS_CSV,
    TIMEZONES_CSV,
    BlankSource,
    Chunk,
    CsvChunks,
    CsvFile,
)
from store_monitor.sources.chunks import CHUNK_BYTES

__all__ = [
    "BLOCK_BYTES",
    "HoursLoad",
    "IngestResult",
    "Load",
    "OwnersLoad",
    "PollsLoad",
    "TimezonesLoad",
    "ValueRefused",
    "file_blocks",
    "ingest_business_hours",
    "ingest_owners",
    "ingest_polls",
    "ingest_timezones",
    "load_csv",
    "load_file",
]

BLOCK_BYTES: Final = 1024 * 1024
"""A file is read this much at a time."""

_LOADS: Final[Mapping[CsvFile, Callable[[AsyncSession], Load[Any]]]] = {
    POLLS_CSV: PollsLoad,
    HOURS_CSV: HoursLoad,
    TIMEZONES_CSV: TimezonesLoad,
    OWNERS_CSV: OwnersLoad,
}
"""How each kind of file is stored."""


async def load_file(
    session: AsyncSession,
    file: CsvFile,
    blocks: AsyncIterable[bytes],
    *,
    name: str,
    latest: datetime,
    allow_blank: bool = True,
) -> IngestResult:
    """A file of kind `file` called `name`, stored in `session` by its load, as `load_csv`
    stores it; stamps after `latest` are refused where the file has them."""
    return await load_csv(
        _LOADS[file](session),
        blocks,
        name=name,
        read=file.reader(name=name, latest=latest),
        allow_blank=allow_blank,
    )


async def load_csv(
    load: Load[Prepared],
    blocks: AsyncIterable[bytes],
    *,
    name: str,
    read: Callable[[bytes], pl.DataFrame],
    allow_blank: bool = True,
    chunk_bytes: int = CHUNK_BYTES,
) -> IngestResult:
    """CSV bytes, as they arrive, read a chunk of records at a time by `read` (a reader of
    `store_monitor.sources`), prepared and added to `load`: memory holds two chunks' frames and
    the bytes of a third, not the file.

    Three steps overlap: while a chunk is added (the database's work mostly), the next one is
    read and prepared (Polars', in a thread, off the GIL), and the bytes of the one after arrive
    and are cut. Errors are raised in the file's order: the reader's located by the file's lines;
    a compressed file is a `CompressedSource`, and without `allow_blank` one of only whitespace
    a `BlankSource`."""

    def prepared(chunk: Chunk) -> Prepared:
        return load.prepare(chunk.read(read))

    # Each chunk's preparation in the file's order, or the error that stopped the reading; then
    # None. A chunk's preparation starts once the one before is ready: one at a time.
    ready: asyncio.Queue[asyncio.Future[Prepared] | None] = asyncio.Queue()
    room = asyncio.Semaphore(1)

    async def prepare_next(chunk: Chunk) -> None:
        await room.acquire()
        ready.put_nowait(asyncio.ensure_future(asyncio.to_thread(prepared, chunk)))

    async def read_ahead() -> None:
        chunks = CsvChunks(name, chunk_bytes=chunk_bytes)
        try:
            async for block in blocks:
                for chunk in chunks.feed(block):
                    await prepare_next(chunk)
            if chunks.blank and not allow_blank:
                raise BlankSource(name)
            for chunk in chunks.finish():
                await prepare_next(chunk)
        except Exception as error:
            # Raised by the adding side once the chunks before it are added.
            failed: asyncio.Future[Prepared] = asyncio.get_running_loop().create_future()
            failed.set_exception(error)
            ready.put_nowait(failed)
        else:
            ready.put_nowait(None)

    reading = asyncio.create_task(read_ahead())
    try:
        while (preparing := await ready.get()) is not None:
            frame = await preparing
            room.release()
            await load.add(frame)
    finally:
        reading.cancel()
        await asyncio.wait([reading])
        # After a failure, the preparations started are waited for (a thread cannot be
        # stopped) and their own outcomes, errors too perhaps, dropped.
        while not ready.empty():
            if (left := ready.get_nowait()) is not None:
                await asyncio.wait([left])
                if not left.cancelled():
                    left.exception()
    await load.finish()
    return load.result()


async def file_blocks(path: Path) -> AsyncIterator[bytes]:
    """The file's bytes, BLOCK_BYTES at a time."""
    with path.open("rb") as file:
        while block := await asyncio.to_thread(file.read, BLOCK_BYTES):
            yield block


async def _whole(load: Load[Prepared], frame: pl.DataFrame) -> IngestResult:
    # Seconds of Polars work for millions of rows: in a thread, off the event loop.
    await load.add(await asyncio.to_thread(load.prepare, frame))
    await load.finish()
    return load.result()


async def ingest_polls(session: AsyncSession, polls: pl.DataFrame) -> IngestResult:
    """A whole frame of polls, as `PollsLoad`."""
    return await _whole(PollsLoad(session), polls)


async def ingest_business_hours(session: AsyncSession, hours: pl.DataFrame) -> IngestResult:
    """A whole frame of business hours, as `HoursLoad`."""
    return await _whole(HoursLoad(session), hours)


async def ingest_timezones(session: AsyncSession, zones: pl.DataFrame) -> IngestResult:
    """A whole frame of time zones, as `TimezonesLoad`."""
    return await _whole(TimezonesLoad(session), zones)


async def ingest_owners(session: AsyncSession, owners: pl.DataFrame) -> IngestResult:
    """A whole frame of store owners, as `OwnersLoad`."""
    return await _whole(OwnersLoad(session), owners)
