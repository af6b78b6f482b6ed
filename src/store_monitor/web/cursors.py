"""The opaque positions in the lists of reports and schedules that `GET /reports`,
`GET /schedules` and the dashboard page by: a row's creation instant and id."""

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import Query
from pydantic import WithJsonSchema

from store_monitor.db.keyset import Cursor as Cursor  # re-exported: the pages page by it too
from store_monitor.web.errors import invalid_request

CursorQuery = Annotated[
    str | None,
    # An optional query parameter is absent, never null: the schema says string.
    WithJsonSchema({"type": "string"}),
    Query(description="`next_cursor` of the page before; leave out for the first page."),
]
"""The `cursor` parameter of every paged list."""


def encode_cursor(cursor: Cursor) -> str:
    return _encode(cursor.created_at, cursor.id)


def decode_cursor(text: str, *, path: str) -> Cursor:
    """The cursor `encode_cursor` made; ValueError, naming the list `GET <path>`, if `text` is
    not one."""
    return Cursor(*_decode(text, f"not a cursor of GET {path}"))


def cursor_position(cursor: str | None, *, path: str) -> Cursor | None:
    """Where the page of `GET <path>` that `cursor` asks for starts (None: the first page); a
    422 naming `query.cursor` if it is not one of that list's cursors."""
    if cursor is None:
        return None
    try:
        return decode_cursor(cursor, path=path)
    except ValueError as error:
        raise invalid_request("query.cursor", str(error)) from error


def _encode(created_at: datetime, row_id: UUID) -> str:
    # Opaque to clients: base64url of the last row's creation instant and id.
    text = json.dumps([created_at.isoformat(), str(row_id)])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(text: str, error: str) -> tuple[datetime, UUID]:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        instant, row_id = decoded
        created_at = datetime.fromisoformat(instant)
        if created_at.tzinfo is None:
            raise ValueError("no time zone")
        return created_at, UUID(row_id)
    except (binascii.Error, UnicodeDecodeError, TypeError, ValueError) as cause:
        raise ValueError(error) from cause
