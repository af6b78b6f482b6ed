"""Pages of a table newest first, by keyset: a page reads only its own rows through the table's
(created_at, id) index, and rows created while a client pages through are neither skipped nor
shown twice."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

Row = TypeVar("Row")
"""A model with `created_at` and `id` columns, and an index on them."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: its last row's creation instant and id."""

    created_at: datetime
    id: UUID


@dataclass(frozen=True, slots=True)
class Page(Generic[Row]):
    rows: list[Row]
    next: Cursor | None
    """Where the next page starts; None on the last page."""


async def newest_first(
    session: AsyncSession,
    model: type[Row],
    *where: sa.ColumnElement[bool],
    limit: int,
    after: Cursor | None = None,
) -> Page[Row]:
    """The rows of `model` that meet `where`, newest first (ties by id), `limit` at most, those
    after the cursor if given."""
    columns = sa.inspect(model).columns
    created_at, row_id = columns["created_at"], columns["id"]
    query: sa.Select[Any] = (
        sa.select(model, created_at, row_id)
        .where(*where)
        .order_by(created_at.desc(), row_id.desc())
        # One more than asked: whether there is a next page, without a count.
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(sa.tuple_(created_at, row_id) < sa.tuple_(after.created_at, after.id))
    found = (await session.execute(query)).all()
    rows: list[Row] = [row for row, _, _ in found[:limit]]
    if len(found) <= limit:
        return Page(rows=rows, next=None)
    _, last_created_at, last_id = found[limit - 1]
    return Page(rows=rows, next=Cursor(last_created_at, last_id))
