"""The CSV readers: accepted shapes, engine dtypes, and errors that point at file, line, column."""

import gzip
import pickle
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, time
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from store_monitor.frames import BUSINESS_HOURS, POLLS, TIMEZONES
from store_monitor.sources import (
    EARLIEST_POLL,
    SHOWN_CHARS,
    SourceError,
    compression,
    read_business_hours,
    read_polls,
    read_timezones,
    store_id_problem,
    valid_store_ids,
)

POLLS_HEADER = "store_id,status,timestamp_utc\n"
HOURS_HEADER = "store_id,dayOfWeek,start_time_local,end_time_local\n"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def polls_csv(*rows: str) -> bytes:
    return (POLLS_HEADER + "".join(row + "\n" for row in rows)).encode()


def hours_csv(*rows: str, header: str = HOURS_HEADER) -> bytes:
    return (header + "".join(row + "\n" for row in rows)).encode()


def source_error(excinfo: pytest.ExceptionInfo[SourceError]) -> SourceError:
    error = excinfo.value
    assert "\n" not in str(error)
    return error


# --- polls ---------------------------------------------------------------------------------


def test_polls_in_the_real_format() -> None:
    polls = read_polls(
        polls_csv(
            "8419537941919820732,active,2023-01-22 12:09:39.388884 UTC",
            "8419537941919820732,inactive,2023-01-22 13:10:01.000007 UTC",
        )
    )
    expected = pl.DataFrame(
        {
            "store_id": ["8419537941919820732"] * 2,
            "timestamp_utc": [utc(2023, 1, 22, 12, 9, 39, 388884), utc(2023, 1, 22, 13, 10, 1, 7)],
            "status": ["active", "inactive"],
        },
        schema=POLLS,
    )
    assert_frame_equal(polls, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-01-22 12:09:39.388884 UTC", utc(2023, 1, 22, 12, 9, 39, 388884)),
        ("2023-01-22 12:09:39 UTC", utc(2023, 1, 22, 12, 9, 39)),
        ("2023-01-22 12:09:39.5 UTC", utc(2023, 1, 22, 12, 9, 39, 500000)),
        ("2023-01-22 12:09:39.123456789 UTC", utc(2023, 1, 22, 12, 9, 39, 123456)),
        ("2023-01-22T12:09:39Z", utc(2023, 1, 22, 12, 9, 39)),
        ("2023-01-22T12:09:39.388884Z", utc(2023, 1, 22, 12, 9, 39, 388884)),
        ("2023-01-22T12:09:39+00:00", utc(2023, 1, 22, 12, 9, 39)),
        ("2023-01-22 12:09:39.25+00:00", utc(2023, 1, 22, 12, 9, 39, 250000)),
        ("2023-01-22T12:09:39+05:30", utc(2023, 1, 22, 6, 39, 39)),
        ("2023-01-22T20:09:39-0800", utc(2023, 1, 23, 4, 9, 39)),
        ("2023-01-22 12:09:39", utc(2023, 1, 22, 12, 9, 39)),
        (" 2023-01-22 12:09:39 UTC ", utc(2023, 1, 22, 12, 9, 39)),
    ],
)
def test_timestamp_formats(text: str, expected: datetime) -> None:
    polls = read_polls(polls_csv("1,active,2023-01-01 00:00:00.000000 UTC", f"1,active,{text}"))
    assert polls["timestamp_utc"].to_list() == [utc(2023, 1, 1), expected]


def test_status_is_case_insensitive_and_trimmed() -> None:
    polls = read_polls(
        polls_csv(
            "1,ACTIVE,2023-01-22 12:09:39.388884 UTC",
            "1, Inactive ,2023-01-22 12:09:39.388884 UTC",
            "1,active,2023-01-22 12:09:39.388884 UTC",
        )
    )
    assert polls["status"].to_list() == ["active", "inactive", "active"]
    assert polls.schema == POLLS


def test_columns_by_name_in_any_order_extra_ignored_bom_and_padded_headers() -> None:
    data = (
        "\ufeff timestamp_utc ,note,status, store_id\n"
        "2023-01-22 12:09:39.388884 UTC,hello,active,42\n"
    ).encode()
    polls = read_polls(data)
    assert polls.columns == ["store_id", "timestamp_utc", "status"]
    assert polls.row(0) == ("42", utc(2023, 1, 22, 12, 9, 39, 388884), "active")


def test_store_ids_are_text_exactly() -> None:
    ids = ["18446744073709551617", "9223372036854775809", "0012345", "1481966498820158979"]
    polls = read_polls(polls_csv(*(f"{i},active,2023-01-22 12:09:39.388884 UTC" for i in ids)))
    assert polls["store_id"].to_list() == ids


def test_paths_name_errors_after_the_file(tmp_path: Path) -> None:
    path = tmp_path / "store_status.csv"
    path.write_bytes(
        polls_csv("1,active,2023-01-22 12:09:39.388884 UTC", "1,actve,2023-01-22 12:09:39 UTC")
    )
    for source in (path, str(path)):
        with pytest.raises(SourceError) as excinfo:
            read_polls(source)
        assert str(excinfo.value) == (
            "store_status.csv, line 3, column 'status': 'actve' is not 'active' or 'inactive'"
        )


def test_bytes_are_named_polls_unless_named() -> None:
    bad = polls_csv("1,actve,2023-01-22 12:09:39.388884 UTC")
    with pytest.raises(SourceError, match=r"^polls, line 2"):
        read_polls(bad)
    with pytest.raises(SourceError, match=r"^upload\.csv, line 2"):
        read_polls(bad, name="upload.csv")


def test_blank_lines_are_skipped_and_line_numbers_stay_physical() -> None:
    data = polls_csv(
        "1,active,2023-01-22 12:09:39.388884 UTC", "", "2,active,2023-01-22 12:09:39.388884 UTC"
    )
    assert read_polls(data + b"\n\n")["store_id"].to_list() == ["1", "2"]
    with pytest.raises(SourceError) as excinfo:
        read_polls(data + b"3,active,soon\n")
    assert source_error(excinfo).line == 5


def test_crlf_line_endings() -> None:
    data = polls_csv("1,active,2023-01-22 12:09:39 UTC", "2,nope,2023-01-22 12:09:39 UTC")
    data = data.replace(b"\n", b"\r\n")
    with pytest.raises(SourceError) as excinfo:
        read_polls(data)
    assert (excinfo.value.line, excinfo.value.value) == (3, "nope")


@pytest.mark.parametrize(
    ("row", "column", "value", "reason"),
    [
        (",active,2023-01-22 12:09:39 UTC", "store_id", None, "empty value"),
        ("   ,active,2023-01-22 12:09:39 UTC", "store_id", "   ", "empty value"),
        ("1,,2023-01-22 12:09:39 UTC", "status", None, "empty value"),
        ("1,actve,2023-01-22 12:09:39 UTC", "status", "actve", "is not 'active' or 'inactive'"),
        ("1,active,", "timestamp_utc", None, "empty value"),
        ("1,active,yesterday", "timestamp_utc", "yesterday", "is not a timestamp"),
        ("1,active,2023-02-30 12:00:00 UTC", "timestamp_utc", "2023-02-30 12:00:00 UTC", "is not"),
        ("1,active,2023-01-22 25:00:00 UTC", "timestamp_utc", "2023-01-22 25:00:00 UTC", "is not"),
        ("1,active,2023-01-22T12:00:00+99:00", "timestamp_utc", "2023-01-22T12:00:00+99:00", "is"),
    ],
)
def test_poll_errors_name_line_column_and_value(
    row: str, column: str, value: str | None, reason: str
) -> None:
    data = polls_csv("1,active,2023-01-22 12:09:39.388884 UTC", row)
    with pytest.raises(SourceError) as excinfo:
        read_polls(data, name="store_status.csv")
    error = source_error(excinfo)
    assert (error.source, error.line, error.column) == ("store_status.csv", 3, column)
    if value is not None:
        assert error.value == value
    if reason != "empty value":
        assert repr(value) in str(error)
    assert reason in error.reason
    assert str(error).startswith(f"store_status.csv, line 3, column {column!r}: ")


def test_the_first_bad_line_is_reported() -> None:
    data = polls_csv(
        "1,active,2023-01-22 12:09:39.388884 UTC",
        "1,active,not a time",
        "1,gone,2023-01-22 12:09:39.388884 UTC",
        "1,gone,never",
    )
    with pytest.raises(SourceError) as excinfo:
        read_polls(data)
    assert (excinfo.value.line, excinfo.value.column) == (3, "timestamp_utc")


def test_the_leftmost_bad_field_of_a_line_is_reported() -> None:
    with pytest.raises(SourceError) as excinfo:
        read_polls(polls_csv("1,gone,never"))
    assert excinfo.value.column == "status"
    with pytest.raises(SourceError) as excinfo:
        read_polls(b"timestamp_utc,status,store_id\nnever,gone,1\n")
    assert excinfo.value.column == "timestamp_utc"


def test_long_values_are_cut_to_200_characters_with_their_length_stated() -> None:
    long = "x" * 5_000_000
    with pytest.raises(SourceError) as excinfo:
        read_polls(polls_csv(f"1,{long},2023-01-22 12:09:39.388884 UTC"))
    error = source_error(excinfo)
    assert error.value == "x" * SHOWN_CHARS
    assert error.value_length == 5_000_000
    assert "(5,000,000 characters)" in str(error)
    assert len(str(error)) < 400
    assert error.to_dict()["value_length"] == 5_000_000
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.value, copy.value_length) == (error.value, 5_000_000)


def test_a_short_value_is_whole_with_its_length() -> None:
    with pytest.raises(SourceError) as excinfo:
        read_polls(polls_csv("1,x,2023-01-22 12:09:39.388884 UTC"))
    assert (excinfo.value.value, excinfo.value.value_length) == ("x", 1)
    assert "characters" not in str(excinfo.value)


def test_a_long_repeated_header_is_cut_in_the_message() -> None:
    header = "h" * 10_000
    with pytest.raises(SourceError) as excinfo:
        read_polls(f"store_id,status,timestamp_utc,{header},{header}\n".encode())
    assert "(10,000 characters) appears more than once" in str(excinfo.value)
    assert len(str(excinfo.value)) < 400


def test_line_numbers_are_physical_after_quoted_line_breaks() -> None:
    data = (
        b"store_id,status,note,timestamp_utc\n"
        b'1,active,"two\nlines",2023-01-22 12:09:39 UTC\n'
        b'1,active,"three\r\nlines\n!",2023-01-22 12:09:39 UTC\n'
        b"\n"
        b"1,actve,,2023-01-22 12:09:39 UTC\n"
    )
    with pytest.raises(SourceError) as excinfo:
        read_polls(data)
    # header 1, first row 2-3, second row 4-6, blank line 7, the bad row 8.
    assert (excinfo.value.line, excinfo.value.value) == (8, "actve")


def test_line_numbers_after_a_huge_quoted_field_with_escaped_quotes() -> None:
    huge = "a\n" * 100_000 + '""'
    data = (
        f'store_id,note,status,timestamp_utc\n1,"{huge}",active,2023-01-22 12:09:39 UTC\n'
        '1,"x""\n""y",actve,2023-01-22 12:09:39 UTC\n'
    ).encode()
    with pytest.raises(SourceError) as excinfo:
        read_polls(data)
    # The header, then the first row's 100,001 lines.
    assert excinfo.value.line == 1 + 100_001 + 1


def test_line_numbers_with_quotes_but_no_line_breaks() -> None:
    data = polls_csv('"1",active,2023-01-22 12:09:39 UTC', '"2",actve,2023-01-22 12:09:39 UTC')
    with pytest.raises(SourceError) as excinfo:
        read_polls(data)
    assert excinfo.value.line == 3


def test_missing_column() -> None:
    with pytest.raises(SourceError) as excinfo:
        read_polls(b"store_id,status\n1,active\n", name="store_status.csv")
    error = source_error(excinfo)
    assert str(error) == "store_status.csv: missing required column 'timestamp_utc'"
    assert error.line is None


def test_repeated_column() -> None:
    with pytest.raises(SourceError, match="'status' appears more than once"):
        read_polls(b"store_id,status,timestamp_utc, status\n1,active,x,y\n")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "no polls (the file is empty)"),
        (b"\xef\xbb\xbf", "no polls (the file is empty)"),
        (POLLS_HEADER.encode(), "no polls (the file has a header but no rows)"),
        (POLLS_HEADER.encode() + b"\n\n", "no polls (the file has a header but no rows)"),
    ],
)
def test_a_polls_file_without_polls_is_an_error(data: bytes, reason: str) -> None:
    with pytest.raises(SourceError) as excinfo:
        read_polls(data, name="store_status.csv")
    assert str(excinfo.value) == f"store_status.csv: {reason}"


@pytest.mark.parametrize(
    ("data", "line", "reason"),
    [
        (
            polls_csv("1,active,2023-01-22 12:09:39 UTC", "1,active,2023-01-22 12:09:39 UTC,x"),
            3,
            "4 fields, but the header has 3",
        ),
        (
            polls_csv("1,active,2023-01-22 12:09:39 UTC") + b"2,act\xffive,2023-01-22 UTC\n",
            3,
            "not valid UTF-8 (byte 0xff)",
        ),
        (
            polls_csv("1,active,2023-01-22 12:09:39 UTC", '1,"active,2023-01-22 12:09:39 UTC'),
            3,
            "malformed CSV",
        ),
    ],
)
def test_malformed_csv_is_a_source_error(data: bytes, line: int, reason: str) -> None:
    with pytest.raises(SourceError) as excinfo:
        read_polls(data)
    error = source_error(excinfo)
    assert error.line == line
    assert reason in error.reason


def test_malformed_file_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "store_status.csv"
    path.write_bytes(polls_csv("1,active,2023-01-22 12:09:39 UTC", "2,active,x,y"))
    with pytest.raises(SourceError, match=r"^store_status\.csv, line 3: 4 fields"):
        read_polls(path)


def test_error_as_dict_and_through_pickle() -> None:
    with pytest.raises(SourceError) as excinfo:
        read_polls(polls_csv("1,actve,2023-01-22 12:09:39 UTC"), name="s.csv")
    error = excinfo.value
    message = "s.csv, line 2, column 'status': 'actve' is not 'active' or 'inactive'"
    assert error.to_dict() == {
        "source": "s.csv",
        "line": 2,
        "column": "status",
        "value": "actve",
        "value_length": 5,
        "reason": "'actve' is not 'active' or 'inactive'",
        "message": message,
    }
    copy = pickle.loads(pickle.dumps(error))
    assert copy.to_dict() == error.to_dict()
    assert isinstance(error, ValueError)


# --- business hours ------------------------------------------------------------------------


def test_business_hours() -> None:
    hours = read_business_hours(
        hours_csv(
            "1,0,09:00:00,17:30:00",
            "1,6,9:05,23:59:59",
            "2,4,18:00,02:00:00.5",
            "3,3,00:00,24:00",
            "3,2,10:00:00,24:00:00",
        )
    )
    expected = pl.DataFrame(
        {
            "store_id": ["1", "1", "2", "3", "3"],
            "day_of_week": [0, 6, 4, 3, 2],
            "start_time_local": [time(9), time(9, 5), time(18), time(0), time(10)],
            "end_time_local": [
                time(17, 30),
                time(23, 59, 59),
                time(2, 0, 0, 500000),
                time(0),
                time(0),
            ],
        },
        schema=BUSINESS_HOURS,
    )
    assert_frame_equal(hours, expected)


@pytest.mark.parametrize("day_header", ["dayOfWeek", "day"])
def test_day_column_may_be_called_day(day_header: str) -> None:
    header = f"end_time_local,start_time_local,{day_header},store_id,extra\n"
    hours = read_business_hours(hours_csv("17:00,09:00,3,7,x", header=header))
    assert hours.row(0) == ("7", 3, time(9), time(17))


def test_both_day_and_day_of_week_are_refused() -> None:
    header = "store_id,dayOfWeek,start_time_local,end_time_local,day\n"
    with pytest.raises(SourceError) as excinfo:
        read_business_hours(hours_csv("1,0,09:00,17:00,6", header=header), name="menu_hours.csv")
    assert str(source_error(excinfo)) == (
        "menu_hours.csv: columns 'dayOfWeek' and 'day' are two names for the same column; keep one"
    )


def test_day_errors_name_the_header_as_written() -> None:
    header = "store_id,day,start_time_local,end_time_local\n"
    with pytest.raises(SourceError) as excinfo:
        read_business_hours(hours_csv("1,7,09:00,17:00", header=header), name="menu_hours.csv")
    assert str(source_error(excinfo)) == (
        "menu_hours.csv, line 2, column 'day': '7' is not a day of the week 0..6 (0 = Monday)"
    )


@pytest.mark.parametrize(
    ("row", "column", "value", "reason"),
    [
        ("1,-1,09:00,17:00", "dayOfWeek", "-1", "is not a day of the week"),
        ("1,Monday,09:00,17:00", "dayOfWeek", "Monday", "is not a day of the week"),
        ("1,1.0,09:00,17:00", "dayOfWeek", "1.0", "is not a day of the week"),
        ("1,,09:00,17:00", "dayOfWeek", None, "empty value"),
        ("1,1,24:00,17:00", "start_time_local", "24:00", "is only allowed as an end time"),
        ("1,1,9am,17:00", "start_time_local", "9am", "is not a time HH:MM[:SS[.ffffff]]"),
        ("1,1,09:60,17:00", "start_time_local", "09:60", "is not a time"),
        ("1,1,09:00,24:00:01", "end_time_local", "24:00:01", "is not a time"),
        ("1,1,09:00,25:00", "end_time_local", "25:00", "is not a time"),
        ("1,1,09:00,17:00:60", "end_time_local", "17:00:60", "is not a time"),
        ("1,1,09:00,", "end_time_local", None, "empty value"),
        (",1,09:00,17:00", "store_id", None, "empty value"),
    ],
)
def test_business_hours_errors(row: str, column: str, value: str | None, reason: str) -> None:
    with pytest.raises(SourceError) as excinfo:
        read_business_hours(hours_csv("1,1,09:00,17:00", row), name="menu_hours.csv")
    error = source_error(excinfo)
    assert (error.line, error.column, error.value) == (3, column, value)
    assert reason in error.reason
    assert str(error).startswith(f"menu_hours.csv, line 3, column {column!r}: ")


@pytest.mark.parametrize("data", [b"", HOURS_HEADER.encode()])
def test_empty_business_hours_are_zero_rows(data: bytes) -> None:
    hours = read_business_hours(data)
    assert hours.height == 0
    assert hours.schema == BUSINESS_HOURS


def test_business_hours_missing_column() -> None:
    with pytest.raises(SourceError) as excinfo:
        read_business_hours(b"store_id,day,start_time_local\n", name="menu_hours.csv")
    assert str(excinfo.value) == "menu_hours.csv: missing required column 'end_time_local'"


# --- time zones ----------------------------------------------------------------------------


def test_timezones_pass_names_through() -> None:
    zones = read_timezones(b"timezone_str,store_id\nAmerica/Denver,1\n Mars/Olympus ,2\n")
    expected = pl.DataFrame(
        {"store_id": ["1", "2"], "timezone_str": ["America/Denver", "Mars/Olympus"]},
        schema=TIMEZONES,
    )
    assert_frame_equal(zones, expected)


def test_an_empty_timezone_is_missing_data_not_a_bad_file() -> None:
    zones = read_timezones(b'store_id,timezone_str\n1,Asia/Tokyo\n2,\n3,   \n4\n5,""\n')
    expected = pl.DataFrame(
        {"store_id": ["1", "2", "3", "4", "5"], "timezone_str": ["Asia/Tokyo", "", "", "", ""]},
        schema=TIMEZONES,
    )
    assert_frame_equal(zones, expected)


@pytest.mark.parametrize("data", [b"", b"store_id,timezone_str\n"])
def test_empty_timezones_are_zero_rows(data: bytes) -> None:
    zones = read_timezones(data)
    assert zones.height == 0
    assert zones.schema == TIMEZONES


# --- the input rules: poll times, store ids, compression --------------------------------------

LATEST = utc(2026, 12, 2, 15, 0)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("9999-12-31 23:59:59.999999 UTC", "is after 2026-12-02 15:00:00 UTC, later than a poll"),
        ("2999-01-01T00:00:00Z", "is after 2026-12-02 15:00:00 UTC"),
        ("2026-12-02 15:00:00.000001 UTC", "is after"),
        ("0001-01-01 00:00:00.000000 UTC", "is before 2000-01-01, earlier than any poll"),
        ("1999-12-31T23:59:59.999999Z", "is before 2000-01-01"),
        ("2000-01-01T01:00:00+02:00", "is before 2000-01-01"),
    ],
)
def test_poll_times_out_of_range_are_refused(text: str, reason: str) -> None:
    data = polls_csv("1,active,2023-01-22 12:09:39.388884 UTC", f"1,active,{text}")
    with pytest.raises(SourceError) as excinfo:
        read_polls(data, name="store_status.csv", latest=LATEST)
    error = source_error(excinfo)
    assert (error.line, error.column, error.value) == (3, "timestamp_utc", text)
    assert reason in error.reason
    assert str(error).startswith(f"store_status.csv, line 3, column 'timestamp_utc': {text!r} ")


def test_poll_times_at_the_edges_of_the_range_are_taken() -> None:
    data = polls_csv(
        "1,active,2000-01-01 00:00:00.000000 UTC", "1,active,2026-12-02 15:00:00.000000 UTC"
    )
    stamps = read_polls(data, latest=LATEST)["timestamp_utc"].to_list()
    assert stamps == [EARLIEST_POLL, LATEST]


def test_without_latest_only_the_lower_bound_holds() -> None:
    polls = read_polls(polls_csv("1,active,9999-12-31 23:59:59.999999 UTC"))
    assert polls["timestamp_utc"].to_list() == [utc(9999, 12, 31, 23, 59, 59, 999999)]
    with pytest.raises(SourceError, match="is before 2000-01-01"):
        read_polls(polls_csv("1,active,1970-01-01 00:00:00.000000 UTC"))


REAL_IDS = [
    "8419537941919820732",
    "0b5e6f3c-8d51-4c2e-9a7b-3f1d2e4c5a6b",
    "store 12",
    "café-7",
    "x" * 255,
    "1=2",
    "a-b",
    "a/b?c#d%2F",
    "...",
    ".5",
]
BAD_IDS = [
    ("x" * 256, "is longer than 255 characters"),
    ("x" * 1_000_000, "is longer than 255 characters"),
    ("a\x00b", "holds a control character (U+0000)"),
    ("a\x1fb", "holds a control character (U+001F)"),
    ("a\tb", "holds a control character (U+0009)"),
    ("a\x7f", "holds a control character (U+007F)"),
    ("a\x85b", "holds a control character (U+0085)"),
    ('=HYPERLINK("http://x";"y")', "starts with '='"),
    ("+cmd|' /C calc'!A0", "starts with '+'"),
    ("-2+3", "starts with '-'"),
    ("@SUM(1+1)", "starts with '@'"),
    (".", "is a URL dot segment"),
    ("..", "is a URL dot segment"),
]


@pytest.mark.parametrize("store_id", REAL_IDS)
def test_real_store_ids_pass(store_id: str) -> None:
    assert store_id_problem(store_id) is None
    assert pl.select(valid_store_ids(pl.lit(store_id))).item()
    polls = read_polls(polls_csv(f"{store_id},active,2023-01-22 12:09:39 UTC"))
    assert polls["store_id"].to_list() == [store_id]


@pytest.mark.parametrize(("store_id", "reason"), BAD_IDS)
def test_store_ids_breaking_the_rule_are_refused_by_every_reader(
    store_id: str, reason: str
) -> None:
    problem = store_id_problem(store_id)
    assert problem is not None
    assert reason in problem
    assert not pl.select(valid_store_ids(pl.lit(store_id))).item()
    field = '"' + store_id.replace('"', '""') + '"'
    files = [
        (read_polls, polls_csv("1,active,2023-01-22 12:09:39 UTC", f"{field},active,2023-01-22")),
        (read_business_hours, hours_csv("1,1,09:00,17:00", f"{field},1,09:00,17:00")),
        (read_timezones, f"store_id,timezone_str\n1,Asia/Tokyo\n{field},Asia/Tokyo\n".encode()),
    ]
    for read, data in files:
        with pytest.raises(SourceError) as excinfo:
            read(data, name="f.csv")
        error = source_error(excinfo)
        assert (error.line, error.column) == (3, "store_id")
        assert error.value == store_id[:SHOWN_CHARS]
        assert error.value_length == len(store_id)
        assert reason in error.reason


def test_store_ids_are_stripped_before_the_rule() -> None:
    stamp = "2023-01-22 12:09:39 UTC"
    polls = read_polls(polls_csv(f" 42 ,active,{stamp}", f"\t7,active,{stamp}"))
    assert polls["store_id"].to_list() == ["42", "7"]
    with pytest.raises(SourceError, match="starts with '='") as excinfo:
        read_polls(polls_csv(f"1,active,{stamp}", f"  =1+1,active,{stamp}"))
    assert excinfo.value.value == "  =1+1"


def test_the_first_row_of_a_bad_store_id_is_reported() -> None:
    data = polls_csv(
        "1,active,2023-01-22 12:09:39 UTC",
        "2,active,never",
        "@x,active,2023-01-22 12:09:39 UTC",
        "@x,active,2023-01-22 12:09:39 UTC",
    )
    with pytest.raises(SourceError) as excinfo:
        read_polls(data)
    assert (excinfo.value.line, excinfo.value.column) == (3, "timestamp_utc")
    with pytest.raises(SourceError) as excinfo:
        read_polls(data.replace(b"never", b"2023-01-22 12:09:39 UTC"))
    assert (excinfo.value.line, excinfo.value.column) == (4, "store_id")


@pytest.mark.parametrize(
    ("compress", "kind"),
    [
        (gzip.compress, "gzip"),
        (zlib.compress, "zlib"),
        (lambda data: zlib.compress(data, 1), "zlib"),
        (lambda data: zlib.compress(data, 3), "zlib"),
        (lambda data: zlib.compress(data, 9), "zlib"),
        (lambda data: b"\x28\xb5\x2f\xfd" + data, "zstd"),
    ],
)
def test_compressed_files_are_refused(
    compress: Callable[[bytes], bytes], kind: str, tmp_path: Path
) -> None:
    packed = compress(polls_csv("1,active,2023-01-22 12:09:39 UTC"))
    assert compression(packed) == kind
    path = tmp_path / "store_status.csv"
    path.write_bytes(packed)
    for source in (packed, path):
        with pytest.raises(SourceError) as excinfo:
            read_polls(source, name="store_status.csv")
        assert str(source_error(excinfo)) == (
            f"store_status.csv: the file is {kind}-compressed; send the CSV uncompressed"
        )


def test_plain_csv_is_not_taken_for_compressed() -> None:
    assert compression(polls_csv("1,active,2023-01-22 12:09:39 UTC")) is None
    assert compression(b"") is None


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.one_of(
            st.sampled_from("=+-@. \t\r\n\x00\x1f\x7f\x85\x9f\xa0é☕"),
            # Surrogates cannot be in UTF-8 text, so never in a file.
            st.characters(exclude_categories=["Cs"]),
        ),
        max_size=300,
    )
)
def test_the_store_id_rule_is_the_same_in_python_and_polars(store_id: str) -> None:
    vectorised = pl.select(valid_store_ids(pl.lit(store_id, pl.String))).item()
    assert (store_id_problem(store_id) is None) == vectorised
