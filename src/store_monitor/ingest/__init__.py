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
from typing import Final

import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.ingest.loads import IngestResult, Load, ValueRefused
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

_LOADS: Final[Mapping[CsvFile, Callable[[AsyncSession], Load]]] = {
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
    load: Load,
    blocks: AsyncIterable[bytes],
    *,
    name: str,
    read: Callable[[bytes], pl.DataFrame],
    allow_blank: bool = True,
    chunk_bytes: int = CHUNK_BYTES,
) -> IngestResult:
    """CSV bytes, as they arrive, read a chunk of records at a time by `read` (a reader of
    `store_monitor.sources`) and added to `load`: memory holds two chunks, not the file. Errors
    are the reader's, located by the file's lines; a compressed file is a `CompressedSource`,
    and without `allow_blank` one of only whitespace a `BlankSource`."""
    chunks = CsvChunks(name, chunk_bytes=chunk_bytes)
    # The chunk being read while the one before is stored: reading is Polars' work in a
    # thread (off the GIL, the event loop keeps serving), storing mostly the database's.
    reading: asyncio.Future[pl.DataFrame] | None = None

    async def add(found: list[Chunk]) -> None:
        nonlocal reading
        for chunk in found:
            read_before, reading = (
                reading,
                asyncio.ensure_future(asyncio.to_thread(chunk.read, read)),
            )
            if read_before is not None:
                # Awaited in the file's order: the first error in the file is the one raised.
                await load.add(await read_before)

    try:
        async for block in blocks:
            await add(chunks.feed(block))
        if chunks.blank and not allow_blank:
            raise BlankSource(name)
        await add(chunks.finish())
        if reading is not None:
            await load.add(await reading)
    finally:
        if reading is not None:
            # After a failure, the chunk being read is waited for (its thread cannot be
            # stopped) and its own outcome, an error too perhaps, dropped.
            await asyncio.wait([reading])
            if not reading.cancelled():
                reading.exception()
    await load.finish()
    return load.result()


async def file_blocks(path: Path) -> AsyncIterator[bytes]:
    """The file's bytes, BLOCK_BYTES at a time."""
    with path.open("rb") as file:
        while block := await asyncio.to_thread(file.read, BLOCK_BYTES):
            yield block


async def _whole(load: Load, frame: pl.DataFrame) -> IngestResult:
    await load.add(frame)
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
