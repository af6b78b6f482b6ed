"""Validating CSV readers: polls, business hours, time zones and store-owner files in, engine
frames out. Any bad input is a `SourceError` naming the file, line, column and value.

The input rules every reader applies (docs/report-semantics.md, "Inputs"):
- the file is plain CSV in UTF-8, never compressed (`compression`);
- a store id has at most 255 characters, no control characters, does not start with
  `=`, `+`, `-` or `@`, and is not `.` or `..` (`store_id_problem`);
- a poll is stamped from 2000-01-01 (`EARLIEST_POLL`) to the caller's `latest`, the server's
  clock plus a small skew.

Large files are read a chunk of whole records at a time (`CsvChunks`), so that memory does not
grow with the file.
"""

from store_monitor.sources.chunks import Chunk, CsvChunks
from store_monitor.sources.csv_reader import CsvFile, Source
from store_monitor.sources.errors import (
    SHOWN_CHARS,
    BlankSource,
    CompressedSource,
    SourceError,
    compression,
    shortened,
)
from store_monitor.sources.hours import HOURS_CSV, read_business_hours
from store_monitor.sources.polls import EARLIEST_POLL, POLLS_CSV, read_polls
from store_monitor.sources.store_ids import (
    STORE_ID_MAX_CHARS,
    STORE_ID_PATTERN,
    STORE_ID_RULES,
    TEXT_PATTERN,
    store_id_problem,
    valid_store_ids,
)
from store_monitor.sources.zones_owners import (
    OWNERS_CSV,
    TIMEZONES_CSV,
    read_owners,
    read_timezones,
)

__all__ = [
    "EARLIEST_POLL",
    "HOURS_CSV",
    "OWNERS_CSV",
    "POLLS_CSV",
    "SHOWN_CHARS",
    "STORE_ID_MAX_CHARS",
    "STORE_ID_PATTERN",
    "STORE_ID_RULES",
    "TEXT_PATTERN",
    "TIMEZONES_CSV",
    "BlankSource",
    "Chunk",
    "CompressedSource",
    "CsvChunks",
    "CsvFile",
    "Source",
    "SourceError",
    "compression",
    "read_business_hours",
    "read_owners",
    "read_polls",
    "read_timezones",
    "shortened",
    "store_id_problem",
    "valid_store_ids",
]
