"""The reader every source shares: CSV text → validated engine columns, or a `SourceError`
naming the first bad row's line, column and value.

The file is plain CSV in UTF-8, never compressed (`compression`). Each source says how its
columns are parsed (`Column`); every one has the `store_id` column (`STORE_ID`).
"""

import csv
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Final

import polars as pl

from store_monitor.sources.errors import (
    SHOWN_CHARS,
    CompressedSource,
    SourceError,
    compression,
    shortened,
)
from store_monitor.sources.store_ids import store_id_problem, valid_store_ids

Source = str | Path | bytes
"""A path to a CSV file, or the file's raw bytes (e.g. an HTTP upload)."""

_DUPLICATED: Final = re.compile(r"_duplicated_\d+$")
_BLANK: Final = "__blank"


@dataclass(frozen=True, slots=True)
class Column:
    """How one engine column is read from the file's text."""

    name: str
    headers: tuple[str, ...]  # accepted header names; the first is the one asked for
    parse: Callable[[pl.Expr], pl.Expr]  # text -> value, null where the text is not valid
    problem: Callable[[str], str]  # what is wrong with a text that gave null
    # A slower parse, tried only on the texts `parse` turned down.
    retry: Callable[[pl.Series], pl.Series] | None = None
    # A check of the parsed value: where it fails, the value is null (not valid). A step of its
    # own, so that the parsed value is reused rather than parsed again for the check.
    accept: Callable[[pl.Expr], pl.Expr] | None = None
    # For a column whose values repeat (store ids): a parse of the *distinct* texts after the
    # read, instead of `parse` on every row. Text -> value, null where the text is not valid.
    distinct: Callable[[pl.Expr], pl.Expr] | None = None


def _as_text(text: pl.Expr) -> pl.Expr:
    return text


def _store_ids(text: pl.Expr) -> pl.Expr:
    stripped = text.str.strip_chars()
    return pl.when(valid_store_ids(stripped)).then(stripped)


def _store_id_text_problem(text: str) -> str:
    # Stripped as the reader strips (Python's str.strip drops other characters).
    problem = store_id_problem(pl.Series([text]).str.strip_chars().item())
    assert problem is not None, f"{text!r} keeps the store-id rule"
    return problem


STORE_ID: Final = Column(
    "store_id", ("store_id",), _as_text, _store_id_text_problem, distinct=_store_ids
)
"""The `store_id` column of every reader: opaque text, surrounding whitespace dropped, never
parsed, checked by the store-id rule (`store_id_problem`)."""
# Owner ids keep the store ids' rule: opaque text that ends up in keys, logs and pages.
OWNER_ID: Final = Column(
    "owner_id", ("owner_id",), _as_text, _store_id_text_problem, distinct=_store_ids
)


@dataclass(frozen=True, kw_only=True, slots=True)
class CsvFile:
    """A kind of input file: its reader, what it is called and how it usually looks."""

    label: str
    """What the file is called in errors when the caller does not name it."""
    file_name: str
    """Its name in a data folder."""
    header: str
    """The usual file's header line, for examples."""
    read: Callable[..., pl.DataFrame]
    """`read(source, *, name=None)`, with `latest=` too where `bounded_by_clock`."""
    bounded_by_clock: bool = False
    """Rows stamped later than the clock plus the skew are refused: a broken clock's poll would
    become every report's `now`."""

    def reader(self, *, name: str, latest: datetime) -> Callable[[Source], pl.DataFrame]:
        """`read` for the file called `name`; `latest` bounds the stamps where there are any."""
        if self.bounded_by_clock:
            return partial(self.read, name=name, latest=latest)
        return partial(self.read, name=name)


def source_name(source: Source, name: str | None, default: str) -> str:
    if name is not None:
        return name
    return default if isinstance(source, bytes) else Path(source).name


def read_columns(source: Source, name: str, columns: Sequence[Column]) -> pl.DataFrame | None:
    """The engine columns, validated, blank lines left out; None if the file is empty."""
    kind = compression(source[:4] if isinstance(source, bytes) else _head(Path(source)))
    if kind is not None:
        raise CompressedSource(name, kind)
    # infer_schema=False reads every column as String: 19-digit ids stay exact.
    scan = pl.scan_csv(
        source if isinstance(source, bytes) else Path(source), infer_schema=False, glob=False
    )
    try:
        written = scan.collect_schema().names()
    except pl.exceptions.NoDataError:
        return None
    except pl.exceptions.PolarsError as error:
        raise _malformed(source, name, error) from None
    headers = _headers(name, written, columns)

    parsed = (
        scan.select(
            *(
                column.parse(pl.col(headers[column.name][1])).alias(column.name)
                for column in columns
            ),
            *(
                pl.col(headers[column.name][1]).alias(_text(column))
                for column in columns
                if column.distinct is None
            ),
            # Blank lines come through as rows of nulls. Looking at every column also keeps every
            # column read: with a projection, Polars lets rows with too many fields through.
            pl.all_horizontal(pl.all().is_null()).alias(_BLANK),
        )
        .with_columns(
            pl.when(column.accept(pl.col(column.name))).then(column.name).alias(column.name)
            for column in columns
            if column.accept is not None
        )
        .select(
            *(column.name for column in columns),
            # The text is kept only where it didn't parse: to retry it, or to quote it.
            *(
                pl.when(pl.col(column.name).is_null())
                .then(pl.col(_text(column)))
                .alias(_text(column))
                for column in columns
                if column.distinct is None
            ),
            _BLANK,
        )
    )
    try:
        # The streaming engine parses chunks of the file in parallel as they are read.
        frame = parsed.collect(engine="streaming")
    except pl.exceptions.PolarsError as error:
        raise _malformed(source, name, error) from None

    for column in columns:
        if column.distinct is not None:
            frame = _parsed_distinct(frame, column.name, _text(column), column.distinct)
        elif column.retry is not None:
            frame = _retried(frame, column, _text(column))
    in_file_order = sorted(columns, key=lambda column: written.index(headers[column.name][1]))
    _check(source, frame, name, in_file_order, {c.name: headers[c.name][0] for c in columns})
    blank = frame[_BLANK]
    frame = frame.select(column.name for column in columns)
    return frame.filter(~blank) if blank.any() else frame


def _head(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(4)


def _text(column: Column) -> str:
    return f"__text_{column.name}"


def _headers(
    name: str, written: Sequence[str], columns: Sequence[Column]
) -> dict[str, tuple[str, str]]:
    """Engine column -> (header as the user wrote it, Polars' name for that column)."""
    by_header: dict[str, str] = {}
    for polars_name in written:
        header = polars_name.lstrip("\ufeff").strip()
        # Polars renames a repeated header "x" to "x_duplicated_0".
        repeated = _DUPLICATED.sub("", header)
        if repeated in by_header:
            raise SourceError(
                name, f"column {shortened(repeated)} appears more than once in the header"
            )
        by_header[header] = polars_name
    found: dict[str, tuple[str, str]] = {}
    for column in columns:
        present = [h for h in column.headers if h in by_header]
        if not present:
            raise SourceError(name, f"missing required column {column.headers[0]!r}")
        if len(present) > 1:
            # Which one the user meant is a guess: refused rather than guessed.
            raise SourceError(
                name,
                f"columns {' and '.join(map(repr, present))} are two names for the same column; "
                "keep one",
            )
        accepted = present[0]
        found[column.name] = (accepted, by_header[accepted])
    return found


def _parsed_distinct(
    frame: pl.DataFrame, column: str, text: str, parse: Callable[[pl.Expr], pl.Expr]
) -> pl.DataFrame:
    """`column` (still text) parsed by `parse` on its distinct values; where a value is not
    valid, it becomes null and its text is kept in `text`, as `_read` keeps them."""
    texts = frame[column].unique()
    distinct = texts.to_frame("text").select("text", value=parse(pl.col("text")))
    changed = distinct.filter(pl.col("text").ne_missing(pl.col("value")))
    if changed.is_empty():
        return frame.with_columns(pl.lit(None, pl.String).alias(text))
    values = frame[column].replace(changed["text"], changed["value"])
    return frame.with_columns(
        values.alias(column), pl.when(values.is_null()).then(frame[column]).alias(text)
    )


def _retried(frame: pl.DataFrame, column: Column, text: str) -> pl.DataFrame:
    assert column.retry is not None
    # The text is null wherever the value parsed: counting nulls costs nothing.
    if frame[text].null_count() == frame.height:
        return frame
    rows = frame[text].is_not_null().arg_true()
    values = column.retry(frame[text].gather(rows))
    if column.accept is not None:
        values = values.to_frame("value").select(
            pl.when(column.accept(pl.col("value"))).then("value")
        )["value"]
    return frame.with_columns(frame[column.name].scatter(rows, values))


def _check(
    source: Source,
    frame: pl.DataFrame,
    name: str,
    columns: Sequence[Column],
    headers: Mapping[str, str],
) -> None:
    """Raise for the first bad row (then its first bad column of `columns`): a null value
    outside a blank line is an empty field, or text that `problem` explains."""
    # Blank lines have null values too: without any null there's nothing to look at.
    if all(frame[c.name].null_count() == 0 for c in columns):
        return
    bad = frame.select(
        pl.any_horizontal(pl.col(c.name).is_null() for c in columns) & ~pl.col(_BLANK)
    ).to_series()
    if not bad.any():
        return
    row = bad.arg_true().item(0)
    for column in columns:
        if frame[column.name][row] is None:
            value: str | None = frame[_text(column)][row]
            reason = column.problem(value) if value else "empty value"
            raise SourceError(
                name,
                reason,
                line=_physical_line(source, row),
                column=headers[column.name],
                value=value,
            )


def _physical_line(source: Source, row: int) -> int:
    """The line of the file (from 1, the header's) on which data row `row` (from 0, blank lines
    included) starts, as an editor counts: a quoted field may hold line breaks.

    Slow, but only on the error path: one step per quoted field before the row, the line breaks
    between them counted at once.
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    before = row + 1  # record ends before the row: the header's and the earlier rows'
    ends = inside = position = 0
    while True:
        quote = data.find(b'"', position)
        ends += data.count(b"\n", position, len(data) if quote < 0 else quote)
        if ends >= before or quote < 0:
            return 1 + before + inside
        close = quote
        while True:  # the closing quote; "" inside a quoted field is an escaped one
            close = data.find(b'"', close + 1)
            if close < 0 or data[close + 1 : close + 2] != b'"':
                break
            close += 1
        if close < 0:  # unclosed: Polars would have refused the file
            return 1 + before + inside
        inside += data.count(b"\n", quote, close)
        position = close + 1


def _malformed(source: Source, name: str, error: pl.exceptions.PolarsError) -> SourceError:
    """Locate what Polars refused to parse; slow, but only on this error path."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as bad:
        offset = bad.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        return SourceError(
            name,
            f"not valid UTF-8 (byte 0x{data[offset]:02x})",
            line=data.count(b"\n", 0, offset) + 1,
        )
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        width = len(next(reader, []))
        for fields in reader:
            if fields and len(fields) > width:
                return SourceError(
                    name,
                    f"{len(fields)} fields, but the header has {width}",
                    line=reader.line_num,
                )
    except csv.Error as bad:
        return SourceError(name, f"malformed CSV ({bad})", line=reader.line_num)
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return SourceError(name, f"malformed CSV ({first_line[:SHOWN_CHARS]})")


def problem(explained: str) -> Callable[[str], str]:
    """A column's `problem`: the value quoted, then `explained`; "empty value" for a blank one."""
    return lambda value: f"{shortened(value)} {explained}" if value.strip() else "empty value"
