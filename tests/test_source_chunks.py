"""CsvChunks: a file read chunk by chunk gives the rows, and the errors, of the file read whole."""

import gzip
from collections.abc import Callable

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from store_monitor.sources import (
    Chunk,
    CompressedSource,
    CsvChunks,
    SourceError,
    read_business_hours,
    read_owners,
    read_polls,
)

POLLS_HEADER = b"store_id,status,timestamp_utc\n"


def chunked(
    data: bytes, *, pieces: int, chunk_bytes: int, max_line_bytes: int = 1 << 20
) -> list[Chunk]:
    chunks = CsvChunks("f.csv", chunk_bytes=chunk_bytes, max_line_bytes=max_line_bytes)
    found: list[Chunk] = []
    for start in range(0, len(data), pieces):
        found += chunks.feed(data[start : start + pieces])
    return [*found, *chunks.finish()]


Outcome = pl.DataFrame | str


def read_whole_and_chunked(
    read: Callable[..., pl.DataFrame], data: bytes, *, pieces: int, chunk_bytes: int
) -> tuple[Outcome, Outcome]:
    """The file read whole and read by chunks: each a frame, or the error's message."""

    def attempt(work: Callable[[], pl.DataFrame]) -> Outcome:
        try:
            return work()
        except SourceError as error:
            return error.message

    whole = attempt(lambda: read(data, name="f.csv"))

    def by_chunks() -> pl.DataFrame:
        chunks = chunked(data, pieces=pieces, chunk_bytes=chunk_bytes)
        return pl.concat([chunk.read(lambda text: read(text, name="f.csv")) for chunk in chunks])

    return whole, attempt(by_chunks)


_ids = st.sampled_from(["1", "a b", '"q""x"', '"two\nlines"', '"三\r\n"', "", "-x"])
_statuses = st.sampled_from(["active", "inactive", "Active ", '"active"', "down"])
_stamps = st.sampled_from(
    ["2023-01-22 12:09:39.388884 UTC", "2023-01-22T12:09:39Z", '"2023-01-22 12:00:00"', "x"]
)
_rows = st.lists(
    st.one_of(
        st.tuples(_ids, _statuses, _stamps).map(lambda row: ",".join(row)),
        st.sampled_from(["", "\r"]),  # blank lines, LF or CRLF
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(rows=_rows, pieces=st.integers(1, 64), chunk_bytes=st.integers(1, 200))
def test_polls_by_chunks_are_the_polls_read_whole(
    rows: list[str], pieces: int, chunk_bytes: int
) -> None:
    data = POLLS_HEADER + "".join(row + "\n" for row in rows).encode()
    whole, by_chunks = read_whole_and_chunked(
        read_polls, data, pieces=pieces, chunk_bytes=chunk_bytes
    )
    if isinstance(whole, pl.DataFrame):
        assert isinstance(by_chunks, pl.DataFrame), by_chunks
        assert_frame_equal(by_chunks, whole)
    else:
        assert by_chunks == whole


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "no polls (the file is empty)"),
        (POLLS_HEADER, "no polls (the file has a header but no rows)"),
        (POLLS_HEADER + b"\n\n", "no polls (the file has a header but no rows)"),
        (b"store_id,status,timestamp_utc", "no polls (the file has a header but no rows)"),
    ],
)
def test_files_without_rows_are_one_chunk_for_the_reader_to_judge(
    data: bytes, expected: str
) -> None:
    chunks = chunked(data, pieces=3, chunk_bytes=1)
    assert len(chunks) == 1
    with pytest.raises(SourceError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        chunks[0].read(lambda text: read_polls(text, name="f.csv"))


def test_an_empty_hours_file_is_zero_rows_by_chunks_too() -> None:
    (chunk,) = chunked(
        b"store_id,dayOfWeek,start_time_local,end_time_local\n", pieces=5, chunk_bytes=1
    )
    assert chunk.read(read_business_hours).height == 0
    (chunk,) = chunked(b"", pieces=5, chunk_bytes=1)
    assert chunk.read(read_owners).height == 0


@pytest.mark.parametrize("pieces", [1000, 100_000])
@pytest.mark.parametrize("end", [b"", b"\n", b"\n1,active,2023-01-22T12:09:39Z\n"])
def test_a_line_longer_than_the_limit_is_refused_on_its_line(pieces: int, end: bytes) -> None:
    # Whether it arrives in pieces or at once, ends the file or not.
    data = POLLS_HEADER + b"1,active,2023-01-22T12:09:39Z\n" * 3 + b"x" * 5000 + end
    with pytest.raises(SourceError) as excinfo:
        chunked(data, pieces=pieces, chunk_bytes=100, max_line_bytes=4096)
    assert excinfo.value.line == 5
    assert "longer than 4,096 bytes" in excinfo.value.message


@settings(max_examples=300, deadline=None)
@given(lengths=st.lists(st.integers(0, 40), min_size=1, max_size=12), limit=st.integers(2, 20))
def test_the_first_line_over_the_limit_is_the_one_refused(lengths: list[int], limit: int) -> None:
    # Lines of any length, anywhere in a chunk (the bytes arriving at once): only those over the
    # limit count, and the first of them is named.
    data = b"h\n" + b"".join(b"x" * length + b"\n" for length in lengths)
    too_long = [line for line, length in enumerate(lengths, start=2) if length > limit]
    if not too_long:
        chunked(data, pieces=len(data), chunk_bytes=1 << 10, max_line_bytes=limit)
        return
    with pytest.raises(SourceError) as excinfo:
        chunked(data, pieces=len(data), chunk_bytes=1 << 10, max_line_bytes=limit)
    assert excinfo.value.line == too_long[0]


def test_a_header_without_a_line_break_is_refused_before_it_is_held_whole() -> None:
    chunks = CsvChunks("f.csv", max_line_bytes=4096)
    for _ in range(4):
        assert chunks.feed(b"y" * 1000) == []
    with pytest.raises(SourceError) as excinfo:
        chunks.feed(b"y" * 1000)
    assert excinfo.value.line == 1


def test_an_unclosed_quote_cannot_hold_the_rest_of_the_file() -> None:
    data = POLLS_HEADER + b'"' + b"1,active,2023-01-22T12:09:39Z\n" * 1000
    with pytest.raises(SourceError, match="unclosed quote") as excinfo:
        chunked(data, pieces=4096, chunk_bytes=1024, max_line_bytes=8192)
    assert excinfo.value.line == 2


def test_a_compressed_file_is_refused_from_its_first_bytes() -> None:
    chunks = CsvChunks("f.csv")
    data = gzip.compress(POLLS_HEADER)
    assert chunks.feed(data[:2]) == []
    with pytest.raises(CompressedSource) as excinfo:
        chunks.feed(data[2:])
    assert excinfo.value.kind == "gzip"


def test_whitespace_only_is_blank() -> None:
    chunks = CsvChunks("f.csv")
    chunks.feed(b" \r\n\t")
    assert chunks.blank
    chunks.feed(b"a")
    assert not chunks.blank
