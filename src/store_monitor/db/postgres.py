"""Postgres bulk paths: COPY in and out through the asyncpg connection beneath a session, and
the decoding of values packed by `string_agg` (one row of a few large values).

Row-by-row fetches and inserts cost about ten times more than COPY for the report's inputs.
Everything runs in the session's transaction: the caller still commits or rolls back.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

import asyncpg  # type: ignore[import-untyped]
import polars as pl
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.frames import BUSINESS_HOURS

_CSV_CHUNK_BYTES: Final = 1 << 20
# Rows encoded at a time for binary COPY: about 12 MB of polls, 50 MB of text while encoding.
_BINARY_CHUNK_ROWS: Final = 1 << 18
_HEX_WORDS: Final = pl.Series([f"{word:04x}" for word in range(1 << 16)])
# PGCOPY signature, flags (none), header extension length (none); the trailer is a -1 count.
_BINARY_HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + bytes(4) + bytes(4)
_BINARY_TRAILER: Final = b"\xff\xff"
_WIDTHS: Final = ((pl.UInt8(), 1), (pl.Int32(), 4), (pl.Int64(), 8))
_DECODED_PIECE: Final = 1 << 13
POSTGRES_EPOCH_US: Final = 946_684_800_000_000
"""Binary timestamptz (COPY's binary format, `timestamptz_send`) counts microseconds since
2000-01-01 UTC: add this for microseconds since 1970-01-01."""

# asyncpg ships no type information: its connection is typed as Any here.
AsyncpgConnection = Any


async def asyncpg_connection(session: AsyncSession) -> AsyncpgConnection:
    """The asyncpg connection under the session's, with the session's transaction open on it."""
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    if not driver.is_in_transaction():
        # SQLAlchemy's adapter sends BEGIN lazily, with the first statement it runs; without
        # this a COPY would run outside the session's transaction.
        await connection.exec_driver_sql("SELECT 1")
    return driver


@dataclass(frozen=True, slots=True)
class CsvRows:
    """A frame's rows as COPY's CSV (no header), and its column names."""

    columns: list[str]
    data: bytes

    @classmethod
    def of(cls, frame: pl.DataFrame) -> "CsvRows":
        """Polars writes dates, times and instants in ISO forms Postgres parses, and floats
        exactly."""
        if frame.height == 0:
            return cls(frame.columns, b"")
        return cls(frame.columns, frame.write_csv(include_header=False, null_value="").encode())


async def copy_in(session: AsyncSession, table: str, rows: pl.DataFrame | CsvRows) -> None:
    """Append the rows (a frame's, or made ahead of time by `CsvRows.of`) to `table`, matching
    columns by name, as CSV."""
    if isinstance(rows, pl.DataFrame):
        rows = CsvRows.of(rows)
    if not rows.data:
        return
    driver = await asyncpg_connection(session)
    async with _as_sqlalchemy_errors(f"COPY {table} FROM STDIN (FORMAT csv)"):
        await driver.copy_to_table(
            table, source=_slices(rows.data), columns=rows.columns, format="csv"
        )


async def copy_in_binary(session: AsyncSession, table: str, frame: pl.DataFrame) -> None:
    """`copy_in` in Postgres' binary format, for frames of text (String; Enum, cheaper when
    values repeat) and instant (Datetime, microseconds, UTC) columns without nulls.

    Postgres parses text timestamps slowly: for the polls this is three times faster than CSV.
    """
    if frame.height == 0:
        return
    if any(frame.null_count().row(0)):
        raise ValueError("binary COPY of a frame with nulls")
    driver = await asyncpg_connection(session)
    async with _as_sqlalchemy_errors(f"COPY {table} FROM STDIN (FORMAT binary)"):
        await driver.copy_to_table(
            table, source=_binary_copy(frame), columns=frame.columns, format="binary"
        )


async def copy_out(session: AsyncSession, query: str, *args: object) -> bytes:
    """The rows of `query` (a SELECT) as CSV without header; `args` fill its `$1`, `$2`, ..."""
    parts: list[bytes] = []

    async def collect(chunk: bytes) -> None:
        parts.append(chunk)

    driver = await asyncpg_connection(session)
    async with _as_sqlalchemy_errors(query):
        await driver.copy_from_query(query, *args, output=collect, format="csv")
    return b"".join(parts)


def big_endian(data: bytes | None, dtype: pl.DataType) -> pl.Series:
    """Consecutive big-endian numbers of `dtype` (one of `_WIDTHS`), e.g. a `string_agg` of
    `int4send`, `int8send`, `timestamptz_send` or `boolsend` values, decoded at once; None (an
    aggregate of no rows) is none."""
    if not data:
        return pl.Series(dtype=dtype)
    width = next(width for known, width in _WIDTHS if known == dtype)
    count, rest = divmod(len(data), width)
    if rest:
        raise ValueError(f"{len(data)} bytes are not a whole number of {dtype} values")
    # Reinterpreting one value of n numbers holds about six times its size at once; in pieces
    # of at most _DECODED_PIECE numbers, about twice (the pieces' copies), in less time
    # (2.1 M timestamps: a 41 MiB peak against 98 MiB).
    piece = min(count, _DECODED_PIECE)
    whole = count - count % piece
    view = memoryview(data)
    step = piece * width
    parts = [
        _reinterpreted(
            [view[start : start + step] for start in range(0, whole * width, step)], dtype, piece
        )
    ]
    if whole < count:
        parts.append(_reinterpreted([view[whole * width :]], dtype, count - whole))
    return pl.concat(parts)


def texts(joined: bytes | None) -> pl.Series:
    """NUL-separated UTF-8 texts, e.g. a `string_agg` of `convert_to` values joined by a NUL
    (Postgres text never holds NUL)."""
    return pl.Series([] if joined is None else joined.decode().split("\0"), dtype=pl.String)


def repeated(values: pl.Series, counts: pl.Series) -> pl.Series:
    """Each value `count` times, in order."""
    # Gathering shares the texts; repeating them would copy each.
    return values.gather(repeated_positions(counts))


def repeated_positions(counts: pl.Series) -> pl.Series:
    """Each position `0 .. len(counts) - 1` its `count` times, in order (UInt32)."""
    runs = pl.DataFrame(
        {"index": pl.int_range(counts.len(), dtype=pl.UInt32, eager=True), "count": counts}
    ).filter(pl.col("count") > 0)
    return runs.select(pl.col("index").repeat_by("count").explode()).to_series()


def hours_records(store_ids: pl.Series, records: bytes | None) -> pl.DataFrame:
    """Business hours (schema BUSINESS_HOURS) from a `string_agg` of `int8send(day) ||
    time_send(start) || time_send(end)` records, the n-th record of `store_ids`' n-th store."""
    # Times in microseconds since midnight, Polars' in nanoseconds.
    hours = big_endian(records, pl.Int64())
    return pl.DataFrame(
        {
            "store_id": store_ids,
            "day_of_week": hours.gather_every(3, 0).cast(pl.Int8),
            "start_time_local": (hours.gather_every(3, 1) * 1000).cast(pl.Time),
            "end_time_local": (hours.gather_every(3, 2) * 1000).cast(pl.Time),
        },
        schema=BUSINESS_HOURS,
    )


def _reinterpreted(pieces: list[memoryview], dtype: pl.DataType, numbers: int) -> pl.Series:
    """Pieces of `numbers` big-endian numbers each, one after the other."""
    binary = pl.Series([bytes(piece) for piece in pieces], dtype=pl.Binary)
    # Flattening the fixed-size arrays shares their values.
    return binary.bin.reinterpret(dtype=pl.Array(dtype, numbers), endianness="big").reshape((-1,))


@contextlib.asynccontextmanager
async def _as_sqlalchemy_errors(statement: str) -> AsyncIterator[None]:
    """Raise the driver's errors as SQLAlchemy's, like every other statement of the session."""
    try:
        yield
    except asyncpg.PostgresError as error:
        raise DBAPIError(statement, None, error) from error


async def _slices(data: bytes) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(view), _CSV_CHUNK_BYTES):
        yield bytes(view[start : start + _CSV_CHUNK_BYTES])


async def _binary_copy(frame: pl.DataFrame) -> AsyncIterator[bytes]:
    """The frame as a binary COPY stream, in chunks of rows.

    Each chunk is encoded in a thread, off the event loop, while the one before is sent:
    encoding and Postgres' work on the rows overlap.
    """
    yield _BINARY_HEADER
    chunks = (
        frame.slice(start, _BINARY_CHUNK_ROWS)
        for start in range(0, frame.height, _BINARY_CHUNK_ROWS)
    )
    following = asyncio.ensure_future(asyncio.to_thread(_binary_rows, next(chunks)))
    try:
        for chunk in chunks:
            current = following
            following = asyncio.ensure_future(asyncio.to_thread(_binary_rows, chunk))
            yield await current
        yield await following
    finally:
        following.cancel()
    yield _BINARY_TRAILER


def _binary_rows(frame: pl.DataFrame) -> bytes:
    """Tuples of the binary COPY format: a 16-bit field count, then per field a 32-bit byte
    length and the value's bytes, all big-endian.

    Polars strings must be valid UTF-8, so each tuple is built as hexadecimal text by
    vectorised string expressions, and the whole chunk decoded at once by `bytes.fromhex`.
    """
    fields: list[pl.Expr] = [pl.lit(f"{frame.width:04x}")]
    for name in frame.columns:
        fields.extend(_binary_field(name, frame.schema[name]))
    rows = frame.select(pl.concat_str(fields).alias("row"))["row"]
    return bytes.fromhex(rows.str.join("").item())


def _binary_field(name: str, dtype: pl.DataType) -> list[pl.Expr]:
    column = pl.col(name)
    if dtype == pl.Datetime("us", "UTC"):
        micros = column.dt.epoch("us") - POSTGRES_EPOCH_US
        return [pl.lit(f"{8:08x}"), *_hex_words(micros.reinterpret(signed=False), 4)]
    if isinstance(dtype, pl.Enum):
        # Each category is encoded once, then looked up by the rows' codes.
        categories = pl.select(_hex_text(pl.lit(dtype.categories))).to_series()
        return [pl.lit(categories).gather(column.to_physical())]
    if dtype == pl.String:
        return [_hex_text(column)]
    raise TypeError(f"no binary COPY encoding for column {name!r} of {dtype}")


def _hex_text(text: pl.Expr) -> pl.Expr:
    return pl.concat_str(
        *_hex_words(text.str.len_bytes(), 2), text.cast(pl.Binary).bin.encode("hex")
    )


def _hex_words(value: pl.Expr, count: int) -> list[pl.Expr]:
    """A non-negative integer as `count` 16-bit words, big-endian, in hexadecimal."""
    return [
        pl.lit(_HEX_WORDS).gather((value // (1 << (16 * (count - 1 - word)))) % (1 << 16))
        for word in range(count)
    ]
