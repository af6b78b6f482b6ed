"""What every load shares: its result, the `Load` interface, and the database's refusal of a
value as `ValueRefused` (bad data, a 4xx, not a bug)."""

import contextlib
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

import polars as pl
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.sources import SHOWN_CHARS, shortened

# Postgres error classes of a value the database cannot take: data exceptions (e.g. a NUL in
# text, 22021) and program limits (e.g. an index row too large, 54000). Not outages, not bugs.
_REFUSED_VALUE_CLASSES: Final = ("22", "54")
_COPY_LINE: Final = re.compile(r"^COPY \S+, line (\d+)")


class ValueRefused(ValueError):
    """The database refused a value of an ingested frame: bad data (4xx), not an outage.

    `store_id` is that of the refused row when the database said which row (COPY does)."""

    def __init__(self, table: str, reason: str, *, store_id: str | None = None) -> None:
        self.table = table
        self.reason = reason
        self.store_id = store_id
        row = "" if store_id is None else f" (the row of store {shortened(store_id)})"
        self.message = f"{table}: the database refused a value{row}: {reason}"
        super().__init__(self.message)


def _driver_error(error: sa.exc.DBAPIError) -> object:
    # SQLAlchemy's adapted error wraps the driver's, which carries the details.
    return getattr(error.orig, "__cause__", None) or error.orig


def sqlstate(error: sa.exc.DBAPIError) -> str:
    """The Postgres error code of a database error ("" if it has none)."""
    code = getattr(error.orig, "sqlstate", None) or getattr(_driver_error(error), "sqlstate", None)
    return code if isinstance(code, str) else ""


@contextlib.asynccontextmanager
async def refused_values(table: str, copied: pl.DataFrame | None = None) -> AsyncIterator[None]:
    """Raise the database's refusal of a value as `ValueRefused`, naming the row of `copied`
    (the frame a COPY sends) when the error says which line of the COPY it was."""
    try:
        yield
    except sa.exc.DBAPIError as error:
        if not sqlstate(error).startswith(_REFUSED_VALUE_CLASSES):
            raise
        driver = _driver_error(error)
        line = _COPY_LINE.match(getattr(driver, "context", None) or "")
        store_id = None
        if line is not None and copied is not None and 0 < int(line[1]) <= copied.height:
            store_id = str(copied["store_id"][int(line[1]) - 1])
        # The driver's message only: the statement and its parameters stay out.
        reason = str(getattr(driver, "message", None) or error.orig).partition("\n")[0]
        if len(reason) > SHOWN_CHARS:  # Postgres may quote the value it refused
            reason = reason[:SHOWN_CHARS] + "..."
        raise ValueRefused(table, reason, store_id=store_id) from error


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestResult:
    received: int
    """Rows in the frame."""
    added: int
    """Rows stored. Polls: those not stored before and not repeated within the frame; hours
    and time zones: the rows that now stand for the frame's stores (a repeated hours row and
    all but the last time zone of a store count once)."""
    stores: int
    """Distinct stores in the frame."""


Prepared = TypeVar("Prepared")


class Load(ABC, Generic[Prepared]):
    """One file into the database, a frame (a chunk of the file) at a time, all in the session's
    transaction: `prepare` makes of a frame what `add` stores; `result` once every frame was
    added."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.received = 0
        self.added = 0

    @abstractmethod
    def prepare(self, frame: pl.DataFrame) -> Prepared:
        """The frame's work that needs no database (Polars'), run in a thread while the frame
        before is added: so it reads nothing that `add` changes."""

    @abstractmethod
    async def add(self, prepared: Prepared) -> None: ...

    @abstractmethod
    async def finish(self) -> None:
        """The load's last step, once every frame was added."""

    @abstractmethod
    def result(self) -> IngestResult: ...


def conformed(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """The frame's columns of `schema`, in its order; a wrong dtype is a programming error."""
    selected = frame.select(schema.names())
    if selected.schema != schema:
        raise TypeError(f"expected columns {dict(schema)}, got {dict(selected.schema)}")
    return selected
