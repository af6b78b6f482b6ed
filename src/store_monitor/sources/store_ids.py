"""The store-id rule, shared by the readers and by the request parameters that name a store:
at most 255 characters, no control characters, no spreadsheet formula start."""

import unicodedata
from typing import Final, TypedDict

import polars as pl

from store_monitor.sources.errors import shortened

STORE_ID_MAX_CHARS: Final = 255
# A cell starting with one of these is run as a formula by spreadsheets (OWASP "CSV Injection").
# Tab and CR, also formula starts there, are control characters: refused anywhere in an id.
_FORMULA_STARTS: Final = ("=", "+", "-", "@")
_NOT_A_STORE_ID: Final = r"^[=+\-@]|\p{Cc}"
# URL dot segments: browsers and HTTP clients drop them from a path (`%2E` too), so no link
# could open a store of that id.
_DOT_SEGMENTS: Final = (".", "..")
STORE_ID_PATTERN: Final = r"^[^=+\-@\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
"""The store-id rule but its length, as one regular expression that Python, JavaScript and
Rust read alike: for a request parameter naming a store (with its length, `STORE_ID_RULES`),
so that no value the database would refuse (a NUL) reaches a query."""
TEXT_PATTERN: Final = r"^[^\x00-\x1f\x7f-\x9f]*$"
"""Text without control characters: for a free-text request parameter that reaches a query."""


class StringRules(TypedDict):
    """The length and pattern keywords that pydantic's `StringConstraints` and FastAPI's
    `Query` and `Path` share."""

    min_length: int
    max_length: int
    pattern: str


STORE_ID_RULES: Final = StringRules(
    min_length=1, max_length=STORE_ID_MAX_CHARS, pattern=STORE_ID_PATTERN
)
"""The store-id rule of a request parameter or field naming a store: `Query(**STORE_ID_RULES)`."""


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
