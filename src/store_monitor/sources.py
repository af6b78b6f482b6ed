"""Validating CSV readers: polls, business hours and time zones files in, engine frames out.
Any bad input is a `SourceError` naming the file, line, column and value."""

import csv
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl

from store_monitor.frames import BUSINESS_HOURS, OWNERS, POLLS, STATUS, TIMEZONES, UTC_INSTANT

Source = str | Path | bytes
"""A path to a CSV file, or the file's raw bytes (e.g. an HTTP upload)."""

# The real export's format, parsed first: a fixed-width format takes Polars' fast parser.
_FAST_TIMESTAMP: Final = "%Y-%m-%d %H:%M:%S.%6f UTC"
# Anything else is rewritten to "date time[.fraction]±hh:mm" and parsed with this.
_OFFSET_TIMESTAMP: Final = "%Y-%m-%d %H:%M:%S%.f%z"
_TIME: Final = r"^\s*(?<h>\d{1,2}):(?<m>\d{2})(?::(?<s>\d{2})(?:\.(?<f>\d{1,9}))?)?\s*$"
_PLAIN_TIME: Final = r"^[0-9]{2}:[0-5][0-9]:[0-5][0-9]$"
_SHOWN_VALUE_CHARS: Final = 60
_DUPLICATED: Final = re.compile(r"_duplicated_\d+$")
_BLANK: Final = "__blank"


class SourceError(ValueError):
    """One bad input, located: file, line, column, value.

    `line` is the 1-based physical line in the file (the header is line 1), or None when the
    problem is the file as a whole; `column` is the header name as written in the file.
    """

    def __init__(
        self,
        source: str,
        reason: str,
        *,
        line: int | None = None,
        column: str | None = None,
        value: str | None = None,
    ) -> None:
        self.source = source
        self.reason = reason
        self.line = line
        self.column = column
        self.value = value
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
            (self.source, self.reason, self.line, self.column, self.value),
        )

    def to_dict(self) -> dict[str, str | int | None]:
        """A JSON-ready description, e.g. for an HTTP 422 body."""
        return {
            "source": self.source,
            "line": self.line,
            "column": self.column,
            "value": self.value,
            "reason": self.reason,
            "message": self.message,
        }


def _rebuild_source_error(
    source: str, reason: str, line: int | None, column: str | None, value: str | None
) -> SourceError:
    return SourceError(source, reason, line=line, column=column, value=value)


def read_polls(source: Source, *, name: str | None = None) -> pl.DataFrame:
    """Polls with schema POLLS, in file order. A file without polls is an error.

    Timestamps: `2023-01-22 12:09:39.388884 UTC`, or ISO 8601 (`T` or space, optional
    fraction, `Z` or a numeric offset, converted to UTC); a timestamp without any zone is
    taken as UTC, as the column's name says.
    """
    name = _name(source, name, "polls")
    polls = _read(
        source,
        name,
        [
            _STORE_ID,
            _Column(
                "timestamp_utc",
                ("timestamp_utc",),
                # Timestamps are nearly all distinct: Polars' cache of parsed values only costs.
                lambda text: text.str.to_datetime(
                    _FAST_TIMESTAMP, time_unit="us", time_zone="UTC", strict=False, cache=False
                ),
                _problem(
                    "is not a timestamp like '2023-01-22 12:09:39.388884 UTC' "
                    "or ISO 8601 like '2023-01-22T12:09:39Z'"
                ),
                retry=_other_timestamps,
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
            return f"{_shown(value)} is only allowed as an end time"
        return not_a_time(value)

    hours = _read(
        source,
        name,
        [
            _STORE_ID,
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
    (the engine falls back to America/Chicago for unknown ones). An empty file is zero rows."""
    name = _name(source, name, "timezones")
    zones = _read(
        source,
        name,
        [
            _STORE_ID,
            _Column(
                "timezone_str",
                ("timezone_str",),
                _stripped,
                _never_invalid,
                accept=_non_blank,
            ),
        ],
    )
    return pl.DataFrame(schema=TIMEZONES) if zones is None else zones.cast(TIMEZONES)


def read_owners(source: Source, *, name: str | None = None) -> pl.DataFrame:
    """Store owners with schema OWNERS, in file order: one row per (owner, store) membership.
    Both ids are opaque strings, never parsed. An empty file is zero rows."""
    name = _name(source, name, "store owners")
    owners = _read(source, name, [_OWNER_ID, _STORE_ID])
    return pl.DataFrame(schema=OWNERS) if owners is None else owners.cast(OWNERS)


@dataclass(frozen=True, slots=True)
class _Column:
    """How one engine column is read from the file's text."""

    name: str
    headers: tuple[str, ...]  # accepted header names; the first is the one asked for
    parse: Callable[[pl.Expr], pl.Expr]  # text -> value, null where the text is not valid
    problem: Callable[[str], str]  # what is wrong with a non-empty text that gave null
    # A slower parse, tried only on the texts `parse` turned down.
    retry: Callable[[pl.Series], pl.Series] | None = None
    # A check of the parsed value: where it fails, the value is null (not valid). A step of its
    # own, so that the parsed value is reused rather than parsed again for the check.
    accept: Callable[[pl.Expr], pl.Expr] | None = None


def _stripped(text: pl.Expr) -> pl.Expr:
    return text.str.strip_chars()


def _non_blank(value: pl.Expr) -> pl.Expr:
    return value.str.len_bytes() > 0


def _never_invalid(value: str) -> str:
    raise AssertionError(f"{value!r}: text that isn't blank always parses as itself")


# Store ids are opaque strings: only surrounding whitespace is dropped, never parsed.
_STORE_ID: Final = _Column("store_id", ("store_id",), _stripped, _never_invalid, accept=_non_blank)
_OWNER_ID: Final = _Column("owner_id", ("owner_id",), _stripped, _never_invalid, accept=_non_blank)


def _name(source: Source, name: str | None, default: str) -> str:
    if name is not None:
        return name
    return default if isinstance(source, bytes) else Path(source).name


def _read(source: Source, name: str, columns: Sequence[_Column]) -> pl.DataFrame | None:
    """The engine columns, validated, blank lines left out; None if the file is empty."""
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
            *(pl.col(headers[column.name][1]).alias(_text(column)) for column in columns),
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
        if column.retry is not None:
            frame = _retried(frame, column.name, _text(column), column.retry)
    in_file_order = sorted(columns, key=lambda column: written.index(headers[column.name][1]))
    _check(frame, name, in_file_order, {c.name: headers[c.name][0] for c in columns})
    blank = frame[_BLANK]
    frame = frame.select(column.name for column in columns)
    return frame.filter(~blank) if blank.any() else frame


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
            raise SourceError(name, f"column {repeated!r} appears more than once in the header")
        by_header[header] = polars_name
    found: dict[str, tuple[str, str]] = {}
    for column in columns:
        accepted = next((h for h in column.headers if h in by_header), None)
        if accepted is None:
            raise SourceError(name, f"missing required column {column.headers[0]!r}")
        found[column.name] = (accepted, by_header[accepted])
    return found


def _retried(
    frame: pl.DataFrame, column: str, text: str, retry: Callable[[pl.Series], pl.Series]
) -> pl.DataFrame:
    # The text is null wherever the value parsed: counting nulls costs nothing.
    if frame[text].null_count() == frame.height:
        return frame
    rows = frame[text].is_not_null().arg_true()
    return frame.with_columns(frame[column].scatter(rows, retry(frame[text].gather(rows))))


def _check(
    frame: pl.DataFrame, name: str, columns: Sequence[_Column], headers: Mapping[str, str]
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
            reason = column.problem(value) if value and value.strip() else "empty value"
            raise SourceError(
                name,
                reason,
                line=row + 2,  # data rows start after the header, lines count from 1
                column=headers[column.name],
                value=value,
            )


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
    return SourceError(name, f"malformed CSV ({first_line})")


def _problem(problem: str) -> Callable[[str], str]:
    return lambda value: f"{_shown(value)} {problem}"


def _shown(value: str) -> str:
    if len(value) > _SHOWN_VALUE_CHARS:
        value = value[:_SHOWN_VALUE_CHARS] + "..."
    return repr(value)


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
