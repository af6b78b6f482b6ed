"""CSV bytes, arriving in pieces of any size, cut into chunks of whole records that can each be
read on their own: so a file of any size is read in bounded memory, its errors still located
by the file's own lines."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from store_monitor.sources.errors import CompressedSource, SourceError, compression

T = TypeVar("T")

CHUNK_BYTES: Final = 4 * 1024 * 1024
"""About this many bytes of records per chunk: large enough that the per-chunk work (a COPY, a
look-up of what is stored) is small beside the rows, small enough to bound memory (Polars
takes about 20 times a chunk's size to parse it: 16 MiB chunks cost the API 190 MiB)."""
MAX_LINE_BYTES: Final = 1024 * 1024
"""No line of a valid file comes near this: a longer one is refused, and so is a record (a
quoted field may span lines) found this long before its end, rather than held whole."""
_TEXT: Final = re.compile(rb"\S")
_NOT_A_LINE_BREAK: Final = re.compile(rb"[^\r\n]")
_MAGIC_BYTES: Final = 4


@dataclass(frozen=True, slots=True)
class Chunk:
    data: bytes
    """The file's header record, then whole records: a CSV file of its own."""
    line_shift: int
    """Added to a line counted in `data` (its header is line 1), the file's line."""

    def read(self, read: Callable[[bytes], T]) -> T:
        """`read(data)`, a `SourceError` raised by it located by the file's lines."""
        try:
            return read(self.data)
        except SourceError as error:
            if error.line is None or self.line_shift == 0:
                raise
            raise error.moved(self.line_shift) from None


class CsvChunks:
    """Cuts CSV bytes, fed a piece at a time, into `Chunk`s of about `chunk_bytes` of records.

    Records end at a line break outside double quotes (a quoted field may hold line breaks; an
    escaped quote `""` toggles twice). Blank lines are counted but never make a chunk of their
    own; a file whose records are all blank gives one chunk of its header alone, and an empty
    file one empty chunk, so that the reader applies its rules for those. A compressed file is a
    `CompressedSource`; a line over `max_line_bytes`, or an unfinished record, a `SourceError`
    on its first line.
    """

    def __init__(
        self,
        name: str,
        *,
        chunk_bytes: int = CHUNK_BYTES,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        self.name = name
        self.chunk_bytes = chunk_bytes
        self.max_line_bytes = max_line_bytes
        self.blank = True
        """Nothing but whitespace was fed so far."""
        self._pending = bytearray()  # bytes after the last chunk (or header) cut off
        self._scanned = 0  # how far into _pending quotes and line breaks were looked at
        self._in_quotes = False  # at _scanned
        self._records_end = 0  # just after the last whole record in _pending
        self._header: bytes | None = None
        self._header_lines = 0
        self._lines_before = 0  # line breaks of the file before _pending
        self._checked_compression = False
        self._chunks = 0

    def feed(self, data: bytes) -> list[Chunk]:
        """The chunks that `data`, the file's next bytes, completes."""
        if self.blank and _TEXT.search(data):
            self.blank = False
        self._pending += data
        if not self._checked_compression and len(self._pending) >= _MAGIC_BYTES:
            self._check_compression()
        if not self._checked_compression:
            return []
        self._scan()
        if self._header is None:
            return []
        if self._records_end >= self.chunk_bytes:
            return self._cut(self._records_end)
        return []

    def finish(self) -> list[Chunk]:
        """The last chunks, once every byte was fed."""
        self._check_compression()
        self._scan()
        if self._header is None:
            self._header, self._pending = bytes(self._pending), bytearray()
        chunks = self._cut(len(self._pending)) if self._pending else []
        if not chunks and self._chunks == 0:
            chunks = [Chunk(self._header, 0)]
            self._chunks = 1
        return chunks

    def _check_compression(self) -> None:
        if self._checked_compression:
            return
        self._checked_compression = True
        kind = compression(bytes(self._pending[:_MAGIC_BYTES]))
        if kind is not None:
            raise CompressedSource(self.name, kind)

    def _scan(self) -> None:
        """Find the record ends in the bytes not scanned yet; cut off the header once whole."""
        pending, position = self._pending, self._scanned
        while position < len(pending):
            quote = pending.find(b'"', position)
            stop = len(pending) if quote < 0 else quote
            if not self._in_quotes:
                if self._header is None:
                    first = pending.find(b"\n", position, stop)
                    if first >= 0:
                        self._take_header(first + 1)
                        self._scan()
                        return
                else:
                    last = pending.rfind(b"\n", position, stop)
                    if last >= 0:
                        self._records_end = last + 1
            if quote < 0:
                position = len(pending)
            else:
                self._in_quotes = not self._in_quotes
                position = quote + 1
        self._scanned = position
        self._check_record_length()

    def _take_header(self, end: int) -> None:
        if end > self.max_line_bytes:
            raise self._too_long(1)
        self._header = bytes(self._pending[:end])
        self._header_lines = self._header.count(b"\n")
        self._lines_before = self._header_lines
        del self._pending[:end]
        self._scanned = self._records_end = 0

    def _check_record_length(self) -> None:
        unfinished = len(self._pending) - self._records_end
        if unfinished <= self.max_line_bytes:
            return
        if self._header is None:
            raise self._too_long(1)
        raise self._too_long(
            self._lines_before + self._pending.count(b"\n", 0, self._records_end) + 1
        )

    def _too_long(self, line: int) -> SourceError:
        return SourceError(
            self.name,
            f"longer than {self.max_line_bytes:,} bytes, more than any row of a valid file "
            "(a missing line break, or an unclosed quote?)",
            line=line,
        )

    def _cut(self, end: int) -> list[Chunk]:
        assert self._header is not None
        pending = self._pending
        # Checked here, a whole chunk at once, so that the limit does not depend on the
        # pieces the bytes arrived in.
        too_long = _first_long_line(pending, end, self.max_line_bytes)
        if too_long is not None:
            raise self._too_long(self._lines_before + too_long + 1)
        shift = self._lines_before - self._header_lines
        self._lines_before += pending.count(b"\n", 0, end)
        chunk = None
        if _NOT_A_LINE_BREAK.search(pending, 0, end):
            chunk = Chunk(self._header + pending[:end], shift)
            self._chunks += 1
        del pending[:end]
        self._scanned -= min(end, self._scanned)
        self._records_end = 0
        return [] if chunk is None else [chunk]


def _first_long_line(data: bytearray, end: int, limit: int) -> int | None:
    """How many lines of `data[:end]` come before the first one longer than `limit` bytes (its
    line break not counted); None if there is none.

    Such a line holds a whole window of `limit // 2 + 1` bytes at a multiple of that width, and
    a window without a line break is rare in a valid file: only the lines around those are
    measured, instead of each of a chunk's lines (splitting 4 MiB of polls into lines cost the
    event loop 10 ms a chunk)."""
    width = limit // 2 + 1
    for start in range(0, end - width + 1, width):
        if data.find(b"\n", start, start + width) >= 0:
            continue
        line_start = data.rfind(b"\n", 0, start) + 1
        line_end = data.find(b"\n", start + width, end)
        if (end if line_end < 0 else line_end) - line_start > limit:
            return data.count(b"\n", 0, line_start)
    return None
