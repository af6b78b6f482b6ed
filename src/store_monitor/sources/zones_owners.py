"""Time-zone files (`store_id`, `timezone_str` → TIMEZONES) and store-owner files
(`owner_id`, `store_id` → OWNERS): one text value per store, or per membership."""

from typing import Final

import polars as pl

from store_monitor.frames import OWNERS, OWNERS_FILE, TIMEZONES, TIMEZONES_FILE
from store_monitor.sources.csv_reader import (
    OWNER_ID,
    STORE_ID,
    Column,
    CsvFile,
    Source,
    read_columns,
    source_name,
)


def read_timezones(source: Source, *, name: str | None = None) -> pl.DataFrame:
    """Time zones with schema TIMEZONES, in file order. Names are passed through unchecked
    (the engine falls back to America/Chicago for unknown ones); an empty name (or only
    spaces) is missing data, kept as "" and so unknown. An empty file is zero rows."""
    name = source_name(source, name, TIMEZONES_CSV.label)
    zones = read_columns(
        source,
        name,
        [
            STORE_ID,
            Column(
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
    name = source_name(source, name, OWNERS_CSV.label)
    owners = read_columns(source, name, [OWNER_ID, STORE_ID])
    return pl.DataFrame(schema=OWNERS) if owners is None else owners.cast(OWNERS)


TIMEZONES_CSV: Final = CsvFile(
    label="timezones", file_name=TIMEZONES_FILE, header="store_id,timezone_str", read=read_timezones
)
OWNERS_CSV: Final = CsvFile(
    label="store owners", file_name=OWNERS_FILE, header="owner_id,store_id", read=read_owners
)


def _never_invalid(value: str) -> str:
    raise AssertionError(f"{value!r}: text that isn't blank always parses as itself")
