"""The opaque position in the list of reports that `GET /reports` and the dashboard page by."""

import base64
import binascii
import json
from datetime import datetime
from uuid import UUID

from store_monitor.reports import ReportCursor


def encode_cursor(cursor: ReportCursor) -> str:
    """Opaque to clients: base64url of the last report's creation instant and id."""
    text = json.dumps([cursor.created_at.isoformat(), str(cursor.report_id)])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(text: str) -> ReportCursor:
    """The cursor `encode_cursor` made; ValueError if `text` is not one."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        instant, report_id = decoded
        created_at = datetime.fromisoformat(instant)
        if created_at.tzinfo is None:
            raise ValueError("no time zone")
        return ReportCursor(created_at=created_at, report_id=UUID(report_id))
    except (binascii.Error, UnicodeDecodeError, TypeError, ValueError) as error:
        raise ValueError("not a cursor of GET /reports") from error
