"""`SourceError`: one bad input, located by file, line, column and value; and how values are
quoted in its messages."""

from typing import Any, Final

SHOWN_CHARS: Final = 200
"""Values quoted in errors are cut to this many characters (their full length is stated)."""

# Magic bytes of the formats Polars would decompress unasked, past any size limit.
_COMPRESSED: Final = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    *((bytes([0x78, second]), "zlib") for second in (0x01, 0x5E, 0x9C, 0xDA)),
)


class SourceError(ValueError):
    """One bad input, located: file, line, column, value.

    `line` is the 1-based physical line in the file (the header is line 1; a quoted field with
    line breaks spans several), or None when the problem is the file as a whole; `column` is the
    header name as written in the file. `value` is cut to SHOWN_CHARS characters, and
    `value_length` is its full length.
    """

    def __init__(
        self,
        source: str,
        reason: str,
        *,
        line: int | None = None,
        column: str | None = None,
        value: str | None = None,
        value_length: int | None = None,
    ) -> None:
        self.source = source
        self.reason = reason
        self.line = line
        self.column = column
        self.value = None if value is None else value[:SHOWN_CHARS]
        self.value_length = (
            len(value) if value_length is None and value is not None else value_length
        )
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = self.source
        if self.line is not None:
            where += f", line {self.line}"
        if self.column is not None:
            where += f", column {self.column!r}"
        return f"{where}: {self.reason}"

    def __str__(self) -> str:
        return self.message

    # Exceptions get pickled across processes (e.g. as an arq job's result); the default
    # reduce would call __init__ with the message as the only argument.
    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_source_error,
            (self.source, self.reason, self.line, self.column, self.value, self.value_length),
        )

    def moved(self, lines: int) -> "SourceError":
        """The same error `lines` further down the file (e.g. found in a chunk of it)."""
        return SourceError(
            self.source,
            self.reason,
            line=None if self.line is None else self.line + lines,
            column=self.column,
            value=self.value,
            value_length=self.value_length,
        )

    def to_dict(self) -> dict[str, str | int | None]:
        """A JSON-ready description, e.g. for an HTTP 422 body."""
        return {
            "source": self.source,
            "line": self.line,
            "column": self.column,
            "value": self.value,
            "value_length": self.value_length,
            "reason": self.reason,
            "message": self.message,
        }


class CompressedSource(SourceError):
    """The file is compressed (`kind`: gzip, zlib or zstd): refused rather than expanded, since
    what counts against an upload limit is what is sent."""

    def __init__(self, source: str, kind: str) -> None:
        self.kind = kind
        super().__init__(source, f"the file is {kind}-compressed; send the CSV uncompressed")

    def __reduce__(self) -> tuple[Any, ...]:
        return (CompressedSource, (self.source, self.kind))


class BlankSource(SourceError):
    """Nothing but whitespace where a file was expected (an upload that sent nothing)."""

    def __init__(self, source: str) -> None:
        super().__init__(source, "the file is empty")

    def __reduce__(self) -> tuple[Any, ...]:
        return (BlankSource, (self.source,))


def shortened(value: str) -> str:
    """`value` quoted for a message: cut to SHOWN_CHARS characters, its full length stated."""
    if len(value) <= SHOWN_CHARS:
        return repr(value)
    return f"{value[:SHOWN_CHARS]!r}... ({len(value):,} characters)"


def compression(head: bytes) -> str | None:
    """The compression (gzip, zlib or zstd) whose magic bytes start `head`, else None."""
    return next((kind for magic, kind in _COMPRESSED if head.startswith(magic)), None)


def _rebuild_source_error(
    source: str,
    reason: str,
    line: int | None,
    column: str | None,
    value: str | None,
    value_length: int | None,
) -> SourceError:
    return SourceError(
        source, reason, line=line, column=column, value=value, value_length=value_length
    )
