"""The outbox: events are recorded in the caller's transaction, beside the state they announce.

Whoever changes announced state (a live evaluation, a report finishing) calls `record` in the
same transaction; delivery reads the `events` table after commit, in `seq` order. Nothing is sent
from here, so a rolled-back transaction announces nothing and a committed one loses nothing.
"""

import uuid
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import Event
from store_monitor.webhooks.events import (
    AnyEvent,
    IncidentClosedEvent,
    IncidentOpenedEvent,
    event_body,
)


async def record(session: AsyncSession, events: Iterable[AnyEvent]) -> list[uuid.UUID]:
    """Add the events to the outbox in the session's transaction; their ids, in order."""
    events = list(events)
    ids = [uuid.uuid4() for _ in events]
    rows = [
        {
            "id": event_id,
            "type": str(event.type),
            "store_id": _store_of(event),
            "created_at": event.timestamp,
            "body": event_body(event),
        }
        for event_id, event in zip(ids, events, strict=True)
    ]
    if rows:
        await session.execute(sa.insert(Event), rows)
    return ids


def _store_of(event: AnyEvent) -> str | None:
    if isinstance(event, IncidentOpenedEvent | IncidentClosedEvent):
        return event.data.store_id
    return None
