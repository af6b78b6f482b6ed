"""The outbox: events are recorded in the caller's transaction, beside the state they announce,
with one delivery per subscription that wants each.

Whoever changes announced state (a live evaluation, a report finishing) calls `record` in the
same transaction. The deliveries are made there too, by matching the subscriptions (one
statement), rather than by a later fan-out step: a rolled-back transaction announces nothing,
a committed one has its deliveries already, and no cursor over the outbox needs keeping. The
deliveries are leased work (`webhooks.delivery`), queued by the sweep.
"""

import uuid
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import (
    ApiKey,
    Event,
    ReportStatus,
    StoreOwner,
    WebhookDelivery,
    WebhookSubscription,
)
from store_monitor.webhooks.events import (
    AnyEvent,
    IncidentClosedEvent,
    IncidentOpenedEvent,
    event_body,
)


async def record(session: AsyncSession, events: Iterable[AnyEvent]) -> list[uuid.UUID]:
    """Add the events to the outbox in the session's transaction, and a pending delivery of each
    to every enabled subscription that wants it (`wants`); the events' ids, in order."""
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
        await _add_deliveries(session, sa.and_(Event.id.in_(ids), wants()))
    return ids


async def add_delivery(
    session: AsyncSession, event_id: uuid.UUID, subscription_id: uuid.UUID
) -> None:
    """One delivery of a recorded event to one subscription, whatever it asks for (a test)."""
    await _add_deliveries(
        session, sa.and_(Event.id == event_id, WebhookSubscription.id == subscription_id)
    )


def wants() -> sa.ColumnElement[bool]:
    """Whether a subscription (enabled, its key not ended) wants an event: its type is asked
    for; and for a store's event, the store is among its `store_ids` (if set) and its owner's
    stores (for an owner's subscription). A report's events go to every subscription asking for
    their type: owners see reports too (narrowed to their stores)."""
    owns_store = (
        sa.select(StoreOwner.store_id)
        .where(
            StoreOwner.owner_id == WebhookSubscription.owner_id,
            StoreOwner.store_id == Event.store_id,
        )
        .exists()
    )
    return sa.and_(
        WebhookSubscription.disabled_at.is_(None),
        ~key_ended(),
        Event.type == sa.func.any(WebhookSubscription.events),
        sa.or_(
            Event.store_id.is_(None),
            sa.and_(
                sa.or_(
                    WebhookSubscription.store_ids.is_(None),
                    Event.store_id == sa.func.any(WebhookSubscription.store_ids),
                ),
                sa.or_(WebhookSubscription.owner_id.is_(None), owns_store),
            ),
        ),
    )


def key_ended() -> sa.Exists:
    """Whether the key that made a subscription is revoked or has expired (as the API refuses
    it): nothing more is sent for a key that may no longer act, an owner's above all."""
    return (
        sa.select(ApiKey.id)
        .where(
            ApiKey.name == WebhookSubscription.key_name,
            sa.or_(
                ApiKey.revoked_at.is_not(None),
                ApiKey.expires_at <= sa.func.statement_timestamp(),
            ),
        )
        .exists()
    )


async def _add_deliveries(session: AsyncSession, match: sa.ColumnElement[bool]) -> None:
    now = sa.func.statement_timestamp()
    pairs = (
        sa.select(
            sa.func.gen_random_uuid(),
            WebhookSubscription.id,
            Event.id,
            now,
            now,
            sa.literal(ReportStatus.pending.value).cast(WebhookDelivery.status.type),
        )
        .select_from(Event)
        .join(WebhookSubscription, sa.true())
        .where(match)
    )
    columns = ["id", "subscription_id", "event_id", "created_at", "due_at", "status"]
    await session.execute(sa.insert(WebhookDelivery).from_select(columns, pairs))


def _store_of(event: AnyEvent) -> str | None:
    if isinstance(event, IncidentOpenedEvent | IncidentClosedEvent):
        return event.data.store_id
    return None
