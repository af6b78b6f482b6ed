"""Validating CSV readers: polls, business hours and time zones files in, engine frames out.
Any bad input is a `SourceError` naming the file, line, column and value.

The input rules every reader applies (docs/report-semantics.md, "Inputs"):
- the file is plain CSV in UTF-8, never compressed (`compression`);
- a store id has at most 255 characters, no control characters, does not start with
  `=`, `+`, `-` or `@`, and is not `.` or `..` (`store_id_problem`, `STORE_ID`);
- a poll is stamped from 2000-01-01 (`EARLIEST_POLL`) to the caller's `latest`, the server's
  clock plus a small skew.
"""

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import polars as pl

from store_monitor.frames import BUSINESS_HOURS, OWNERS, POLLS, STATUS, TIMEZONES, UTC_INSTANT

Source = str | Path | bytes
"""A path to a CSV file, or the file's raw bytes (e.g. an HTTP upload)."""

EARLIEST_POLL: Final = datetime(2000, 1, 1, tzinfo=UTC)
"""Polls stamped before this are refused: such a stamp is a broken clock or a placeholder."""
STORE_ID_MAX_CHARS: Final = 255
SHOWN_CHARS: Final = 200
"""Values quoted in errors are cut to this many characters (their full length is stated)."""

# The real export's format, parsed first: a fixed-width format takes Polars' fast parser.
_FAST_TIMESTAMP: Final = "%Y-%m-%d %H:%M:%S.%6f UTC"
# Anything else is rewritten to "date time[.fraction]±hh:mm" and parsed with this.
_OFFSET_TIMESTAMP: Final = "%Y-%m-%d %H:%M:%S%.f%z"
_TIME: Final = r"^\s*(?<h>\d{1,2}):(?<m>\d{2})(?::(?<s>\d{2})(?:\.(?<f>\d{1,9}))?)?\s*$"
_PLAIN_TIME: Final = r"^[0-9]{2}:[0-5][0-9]:[0-5][0-9]$"
# A cell starting with one of these is run as a formula by spreadsheets (OWASP "CSV Injection").
# Tab and CR, also formula starts there, are control characters: refused anywhere in an id.
_FORMULA_STARTS: Final = ("=", "+", "-", "@")
_NOT_A_STORE_ID: Final = r"^[=+\-@]|\p{Cc}"
# URL dot segments: browsers and HTTP clients drop them from a path (`%2E` too), so no link
# could open a store of that id.
_DOT_SEGMENTS: Final = (".", "..")
STORE_ID_PATTERN: Final = r"^[^=+\-@\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
"""The store-id rule but its length, as one regular expression that Python, JavaScript and
Rust read alike: for a request parameter naming a store (with `max_length=STORE_ID_MAX_CHARS`),
so that no value the database would refuse (a NUL) reaches a query."""
TEXT_PATTERN: Final = r"^[^\x00-\x1f\x7f-\x9f]*$"
"""Text without control characters: for a free-text request parameter that reaches a query."""
# Magic bytes of the formats Polars would decompress unasked, past any size limit.
_COMPRESSED: Final = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    *((bytes([0x78, second]), "zlib") for second in (0x01, 0x5E, 0x9C, 0xDA)),
)
_DUPLICATED: Final = re.compile(r"_duplicated_\d+$")
_BLANK: Final = "__blank"


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


def shortened(value: str) -> str:
    """`value` quoted for a message: cut to SHOWN_CHARS characters, its full length stated."""
    if len(value) <= SHOWN_CHARS:
        return repr(value)
    return f"{value[:SHOWN_CHARS]!r}... ({len(value):,} characters)"


def compression(head: bytes) -> str | None:
    """The compression (gzip, zlib or zstd) whose magic bytes start `head`, else None."""
    return next((kind for magic, kind in _COMPRESSED if head.startswith(magic)), None)


def store_id_problem(store_id: str) -> str | None:
    """What breaks the store-id rule in `store_id` (surrounding whitespace already dropped), or
    None: at most 255 characters, no control characters, no formula start `=`, `+`, `-`, `@`,
    not a URL dot segment `.` or `..`."""
    if not store_id:
        return "empty value"
    if len(store_id) > STORE_ID_MAX_CHARS:
        return f"{shortened(store_id)} is longer than {STORE_ID_MAX_CHARS} characters"
    control = next((char for char in store_id if unicodedata.category(char) == "Cc"), None)
    if control is not None:
        return f"{shortened(store_id)} holds a control character (U+{ord(control):04X})"
    if store_id.startswith(_FORMULA_STARTS):
        return (
            f"{shortened(store_id)} starts with {store_id[0]!r}, "
            "which spreadsheets run as a formula"
        )
    if store_id in _DOT_SEGMENTS:
        return f"{store_id!r} is a URL dot segment, which no link to the store could carry"
    return None


def valid_store_ids(store_ids: pl.Expr) -> pl.Expr:
    """Whether each store id (surrounding whitespace already dropped) keeps the store-id rule;
    the vectorised `store_id_problem`."""
    return (
        (store_ids.str.len_bytes() > 0)
        & (store_ids.str.len_chars() <= STORE_ID_MAX_CHARS)
        & ~store_ids.str.contains(_NOT_A_STORE_ID)
        & ~store_ids.is_in(_DOT_SEGMENTS)
    )


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


def read_polls(
    source: Source, *, name: str | None = None, latest: datetime | None = None
) -> pl.DataFrame:
    """Polls with schema POLLS, in file order. A file without polls is an error.

    Timestamps: `2023-01-22 12:09:39.388884 UTC`, or ISO 8601 (`T` or space, optional
    fraction, `Z` or a numeric offset, converted to UTC); a timestamp without any zone is
    taken as UTC, as the column's name says. A poll before EARLIEST_POLL or after `latest`
    (the clock plus a skew; None: no upper bound) is refused.
    """
    name = _name(source, name, "polls")
    not_a_timestamp = _problem(
        "is not a timestamp like '2023-01-22 12:09:39.388884 UTC' "
        "or ISO 8601 like '2023-01-22T12:09:39Z'"
    )

    def in_range(instant: pl.Expr) -> pl.Expr:
        after_earliest = instant >= EARLIEST_POLL
        return after_earliest if latest is None else after_earliest & (instant <= latest)

    def timestamp_problem(value: str) -> str:
        instant = _other_timestamps(pl.Series([value])).item()
        if instant is None:
            return not_a_timestamp(value)
        if instant < EARLIEST_POLL:
            return f"{shortened(value)} is before {EARLIEST_POLL:%Y-%m-%d}, earlier than any poll"
        assert latest is not None
        return (
            f"{shortened(value)} is after {latest.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC, "
            "later than a poll can be (the current time plus the allowed clock skew)"
        )

    polls = _read(
        source,
        name,
        [
            STORE_ID,
            _Column(
                "timestamp_utc",
                ("timestamp_utc",),
                # Timestamps are nearly all distinct: Polars' cache of parsed values only costs.
                lambda text: text.str.to_datetime(
                    _FAST_TIMESTAMP, time_unit="us", time_zone="UTC", strict=False, cache=False
                ),
                timestamp_problem,
                retry=_other_timestamps,
                accept=in_range,
            ),
            _Column(
                "status",
                ("status",),
                _exact_status,
                _problem("is not 'active' or 'inactive'"),
                retry=lambda text: (
                    text.str.strip_chars().str.to_lowercase().cast(STATUS, strict=False)
                ),
            ),
        ],
    )
    if polls is None:
        raise SourceError(name, "no polls (the file is empty)")
    if polls.height == 0:
        raise SourceError(name, "no polls (the file has a header but no rows)")
    return polls.cast(POLLS)


def read_business_hours(source: Source, *, name: str | None = None) -> pl.DataFrame:
    """Business hours with schema BUSINESS_HOURS, in file order; the day column may be
    called `dayOfWeek` or `day`. An end time of 24:00 is read as 00:00:00: the contract
    reads both as "until midnight". An empty file is zero rows."""
    name = _name(source, name, "business hours")
    not_a_time = _problem("is not a time HH:MM[:SS[.ffffff]]")

    def start_problem(value: str) -> str:
        if _times(pl.Series([value]), end=True).item() is not None:
            return f"{shortened(value)} is only allowed as an end time"
        return not_a_time(value)

    hours = _read(
        source,
        name,
        [
            STORE_ID,
            _Column(
                "day_of_week",
                ("dayOfWeek", "day"),
                _days,
                _problem("is not a day of the week 0..6 (0 = Monday)"),
            ),
            _Column(
                "start_time_local",
                ("start_time_local",),
                _plain_times,
                start_problem,
                retry=lambda text: _times(text, end=False),
            ),
            _Column(
                "end_time_local",
                ("end_time_local",),
                _plain_times,
                not_a_time,
                retry=lambda text: _times(text, end=True),
            ),
        ],
    )
    return pl.DataFrame(schema=BUSINESS_HOURS) if hours is None else hours.cast(BUSINESS_HOURS)


def read_timezones(source: Source, *, name: str | None = None) -> pl.DataFrame:
    """Time zones with schema TIMEZONES, in file order. Names are passed through unchecked
    (the engine falls back to America/Chicago for unknown ones); an empty name (or only
    spaces) is missing data, kept as "" and so unknown. An empty file is zero rows."""
    name = _name(source, name, "timezones")
    zones = _read(
        source,
        name,
        [
            STORE_ID,
            _Column(
                "timezone_str",
                ("timezone_str",),
                # An empty field is null in Polars' CSV reader: no field is missing data too.
                lambda text: text.str.strip_chars().fill_null(""),
                _never_invalid,
            ),
        ],
    )
    return pl.DataFrame(schema=TIMEZONES) if zones is None else zones.cast(TIMEZONES)


def read_owners(source: Source, *, name: str | None = None) -> pl.DataFrame:
    """Store owners with schema OWNERS, in file order: one row per (owner, store) membership.
    Both ids are opaque strings, never parsed. An empty file is zero rows."""
    name = _name(source, name, "store owners")
    owners = _read(source, name, [_OWNER_ID, STORE_ID])
    return pl.DataFrame(schema=OWNERS) if owners is None else owners.cast(OWNERS)


@dataclass(frozen=True, slots=True)
class _Column:
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


def _never_invalid(value: str) -> str:
    raise AssertionError(f"{value!r}: text that isn't blank always parses as itself")


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


STORE_ID: Final = _Column(
    "store_id", ("store_id",), _as_text, _store_id_text_problem, distinct=_store_ids
)
"""The `store_id` column of every reader: opaque text, surrounding whitespace dropped, never
parsed, checked by the store-id rule (`store_id_problem`)."""
# Owner ids keep the store ids' rule: opaque text that ends up in keys, logs and pages.
_OWNER_ID: Final = _Column(
    "owner_id", ("owner_id",), _as_text, _store_id_text_problem, distinct=_store_ids
)


def _name(source: Source, name: str | None, default: str) -> str:
    if name is not None:
        return name
    return default if isinstance(source, bytes) else Path(source).name


def _read(source: Source, name: str, columns: Sequence[_Column]) -> pl.DataFrame | None:
    """The engine columns, validated, blank lines left out; None if the file is empty."""
    kind = compression(source[:4] if isinstance(source, bytes) else _head(Path(source)))
    if kind is not None:
        raise SourceError(name, f"the file is {kind}-compressed; send the CSV uncompressed")
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


def _text(column: _Column) -> str:
    return f"__text_{column.name}"


def _headers(
    name: str, written: Sequence[str], columns: Sequence[_Column]
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
        accepted = next((h for h in column.headers if h in by_header), None)
        if accepted is None:
            raise SourceError(name, f"missing required column {column.headers[0]!r}")
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


def _retried(frame: pl.DataFrame, column: _Column, text: str) -> pl.DataFrame:
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
    columns: Sequence[_Column],
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


def _problem(problem: str) -> Callable[[str], str]:
    return lambda value: f"{shortened(value)} {problem}" if value.strip() else "empty value"


def _other_timestamps(text: pl.Series) -> pl.Series:
    """ISO 8601 and other shapes of the real format, converted to UTC; no zone means UTC.

    Rewritten to "date time[.fraction]±hh:mm" with literal replacements (a regex with
    captures costs about ten times more) and parsed by Polars' general parser.
    """
    value = (
        pl.col("text")
        .str.strip_chars()
        .str.replace_many(
            {"T": " ", "t": " ", " UTC": "+00:00", "UTC": "+00:00", "Z": "+00:00", "z": "+00:00"},
            leftmost=True,  # " UTC" over the "T" inside it
        )
    )
    with_offset = pl.when(value.str.contains(r"[+-]\d{2}(?::?\d{2})?$")).then(value)
    normalised = with_offset.otherwise(value + "+00:00")
    parsed = normalised.str.to_datetime(
        _OFFSET_TIMESTAMP, time_unit="us", time_zone="UTC", strict=False, cache=False
    )
    return pl.DataFrame({"text": text}).select(parsed.cast(UTC_INSTANT)).to_series()


def _exact_status(text: pl.Expr) -> pl.Expr:
    """The status where the text is exactly one of its values; `retry` takes any other text.

    Two comparisons cost a fraction of a cast to the enum."""
    return (
        pl.when(text == "active")
        .then(pl.lit("active", STATUS))
        .when(text == "inactive")
        .then(pl.lit("inactive", STATUS))
    )


def _days(text: pl.Expr) -> pl.Expr:
    # One character that is a number 0..6: cheaper than a regex, and the same.
    day = text.str.strip_chars()
    number = day.cast(pl.Int8, strict=False)
    return pl.when((day.str.len_bytes() == 1) & number.is_between(0, 6)).then(number)


def _plain_times(text: pl.Expr) -> pl.Expr:
    """The usual `HH:MM:SS` by Polars' fast parser, null for any other text (left to `_times`).

    The shape is checked first: the parser alone would also take a 60th second or one digit.
    """
    return pl.when(text.str.contains(_PLAIN_TIME)).then(text.str.to_time("%H:%M:%S", strict=False))


def _times(text: pl.Series, *, end: bool) -> pl.Series:
    """`HH:MM[:SS[.fraction]]` as Time, null where that's not a time of day. With `end`,
    24:00[:00] is accepted as 00:00:00 (both mean "until midnight")."""
    parts = text.rename("text").to_frame().select(pl.col("text").str.extract_groups(_TIME))
    # Not strict: \d also matches digits of other scripts, which then are not a time.
    h, m, s = (
        pl.col("text").struct.field(part).cast(pl.Int64, strict=False) for part in ("h", "m", "s")
    )
    s = s.fill_null(0)
    fraction = pl.col("text").struct.field("f").str.pad_end(6, "0").str.slice(0, 6)
    microsecond = fraction.cast(pl.Int64, strict=False).fill_null(0)
    in_day = (h <= 23) & (m <= 59) & (s <= 59)
    midnight = (h == 24) & (m == 0) & (s == 0) & (microsecond == 0)
    # Nanoseconds since midnight, Polars' Time; 24:00 wraps to 0.
    value = ((((h % 24) * 60 + m) * 60 + s) * 1_000_000 + microsecond) * 1000
    accepted = (in_day | midnight) if end else in_day
    return parts.select(pl.when(accepted).then(value.cast(pl.Time))).to_series()
