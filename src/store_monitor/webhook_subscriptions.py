"""Webhook subscriptions as their keys see them: create (the secret shown once), list, read,
change, rotate the secret, enable again once disabled, delete, test, and each one's delivery
attempts.

A key sees and deletes only the subscriptions it made; an admin key sees all of them. An owner
key's subscriptions get only its stores' incident events (matched in `webhooks.outbox`).
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum, auto
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import (
    Event,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from store_monitor.db.quotas import QuotaReached as QuotaReached  # the dashboard catches it
from store_monitor.db.quotas import check_quota
from store_monitor.webhooks.events import (
    EventType,
    WebhookTestData,
    WebhookTestEvent,
    event_body,
)
from store_monitor.webhooks.outbox import add_delivery, key_ended
from store_monitor.webhooks.signing import new_secret
from store_monitor.webhooks.targets import check_target_url


@dataclass(frozen=True, kw_only=True, slots=True)
class Subscriber:
    """Who acts on subscriptions: a key (None with authentication off) and, for an owner key,
    its owner."""

    key_name: str | None
    owner_id: str | None
    sees_all: bool
    """An admin key: sees and deletes every subscription."""


class SubscriptionNotFound(LookupError):
    def __init__(self, subscription_id: uuid.UUID) -> None:
        super().__init__(f"no webhook with id {subscription_id}")
        self.subscription_id = subscription_id


class KeyEnded(Exception):
    """The subscription's key is revoked or has expired, so it may not be enabled again:
    nothing would be sent to it."""

    def __init__(self, subscription: WebhookSubscription) -> None:
        super().__init__(
            f"webhook {subscription.id} was made by the API key {subscription.key_name!r}, "
            "which is revoked or has expired: nothing is sent for it any more; subscribe "
            "again with a key in force"
        )
        self.subscription_id = subscription.id


@dataclass(frozen=True, kw_only=True, slots=True)
class WithSecret:
    """A subscription just made, or just given a new secret, and that secret: shown this once."""

    subscription: WebhookSubscription
    secret: str


async def create(
    session: AsyncSession,
    subscriber: Subscriber,
    *,
    url: str,
    events: Sequence[EventType] | None,
    store_ids: Sequence[str] | None,
    allow_private: bool,
    max_per_key: int,
) -> WithSecret:
    """A new subscription of the subscriber's key. Raises `UnsafeTargetError` (a ValueError) for
    a URL webhooks may not go to, `QuotaReached` past `max_per_key`."""
    check_target_url(url, allow_private=allow_private)
    await check_quota(
        session,
        thing="webhook",
        key_name=subscriber.key_name,
        owned=sa.select(sa.func.count())
        .select_from(WebhookSubscription)
        .where(_made_by(subscriber.key_name)),
        limit=max_per_key,
    )
    secret = new_secret()
    subscription = WebhookSubscription(
        url=url,
        secret=secret,
        events=_event_names(events),
        store_ids=_store_ids(store_ids),
        key_name=subscriber.key_name,
        owner_id=subscriber.owner_id,
        created_at=datetime.now(UTC),
    )
    session.add(subscription)
    await session.flush()
    return WithSecret(subscription=subscription, secret=secret)


async def list_visible(session: AsyncSession, subscriber: Subscriber) -> list[WebhookSubscription]:
    """The subscriptions the subscriber sees, oldest first."""
    found = await session.scalars(
        sa.select(WebhookSubscription)
        .where(_visible(subscriber))
        .order_by(WebhookSubscription.created_at, WebhookSubscription.id)
    )
    return list(found)


async def get(
    session: AsyncSession, subscriber: Subscriber, subscription_id: uuid.UUID
) -> WebhookSubscription:
    """The subscription, if the subscriber sees it; else `SubscriptionNotFound`."""
    found = await session.scalar(
        sa.select(WebhookSubscription).where(
            WebhookSubscription.id == subscription_id, _visible(subscriber)
        )
    )
    if found is None:
        raise SubscriptionNotFound(subscription_id)
    return found


class Keep(Enum):
    KEEP = auto()


KEEP: Final = Keep.KEEP
"""An `update` argument left so: that field stays as it is."""


async def update(
    session: AsyncSession,
    subscriber: Subscriber,
    subscription_id: uuid.UUID,
    *,
    url: str | Keep = KEEP,
    events: Sequence[EventType] | Keep | None = KEEP,
    store_ids: Sequence[str] | Keep | None = KEEP,
    allow_private: bool,
) -> WebhookSubscription:
    """Change where the subscription sends and what (None: every event type, every store).
    A new URL is a new receiver: deliveries still waiting go to it, and its failures count
    afresh. Events and stores apply to the events recorded from now on. `UnsafeTargetError`
    (a ValueError), `SubscriptionNotFound`."""
    if url is not KEEP:
        check_target_url(url, allow_private=allow_private)
    subscription = await get(session, subscriber, subscription_id)
    if url is not KEEP and url != subscription.url:
        subscription.url = url
        subscription.failing_since = None
    if events is not KEEP:
        subscription.events = _event_names(events)
    if store_ids is not KEEP:
        subscription.store_ids = _store_ids(store_ids)
    await session.flush()
    return subscription


def _event_names(events: Sequence[EventType] | None) -> list[str]:
    return sorted({str(event) for event in (events or list(EventType))})


def _store_ids(store_ids: Sequence[str] | None) -> list[str] | None:
    return None if store_ids is None else sorted(set(store_ids))


DEFAULT_KEEP_PREVIOUS: Final = timedelta(days=1)
"""How long a rotated secret keeps signing unless the rotation says otherwise."""


async def rotate_secret(
    session: AsyncSession,
    subscriber: Subscriber,
    subscription_id: uuid.UUID,
    *,
    keep_previous: timedelta,
) -> WithSecret:
    """A new secret for the subscription. Deliveries are signed with the old one as well for
    `keep_previous` (zero: not at all), so that its receiver can switch without refusing
    events; a secret kept from an earlier rotation stops signing now. `SubscriptionNotFound`."""
    secret = new_secret()
    keeps = keep_previous > timedelta(0)
    # One statement: rotations at once take turns on the row, each keeping the last one's secret.
    rotated = await session.scalar(
        sa.update(WebhookSubscription)
        .where(WebhookSubscription.id == subscription_id, _visible(subscriber))
        .values(
            secret=secret,
            previous_secret=WebhookSubscription.secret if keeps else None,
            previous_secret_until=(
                sa.func.statement_timestamp() + keep_previous if keeps else None
            ),
        )
        .returning(WebhookSubscription)
        .execution_options(populate_existing=True)
    )
    if rotated is None:
        raise SubscriptionNotFound(subscription_id)
    return WithSecret(subscription=rotated, secret=secret)


async def enable(
    session: AsyncSession, subscriber: Subscriber, subscription_id: uuid.UUID
) -> WebhookSubscription:
    """Enable the subscription again if it was disabled (else leave it as it is); it then gets
    the events recorded from now on. What it missed is not sent: the deliveries failed when it
    was disabled stay failed, and events recorded meanwhile were not meant for it.
    `SubscriptionNotFound`; `KeyEnded` if the key that made it may no longer act."""
    subscription = await get(session, subscriber, subscription_id)
    if subscription.disabled_at is not None:
        ended = sa.select(key_ended()).where(WebhookSubscription.id == subscription.id)
        if await session.scalar(ended):
            raise KeyEnded(subscription)
        subscription.disabled_at = None
        subscription.disabled_reason = None
        # A fresh start: only a day of failures from now on disables it again.
        subscription.failing_since = None
        await session.flush()
    return subscription


async def delete(session: AsyncSession, subscriber: Subscriber, subscription_id: uuid.UUID) -> None:
    """Delete the subscription, its deliveries and their attempts; `SubscriptionNotFound`."""
    deleted = await session.scalar(
        sa.delete(WebhookSubscription)
        .where(WebhookSubscription.id == subscription_id, _visible(subscriber))
        .returning(WebhookSubscription.id)
    )
    if deleted is None:
        raise SubscriptionNotFound(subscription_id)


async def send_test(
    session: AsyncSession, subscriber: Subscriber, subscription_id: uuid.UUID
) -> uuid.UUID:
    """Record a `webhook.test` event for this subscription alone, delivered (and retried) like
    any other; the id of its delivery, for the caller to queue at once."""
    subscription = await get(session, subscriber, subscription_id)
    event = WebhookTestEvent(
        timestamp=datetime.now(UTC), data=WebhookTestData(webhook_id=subscription.id)
    )
    event_key = uuid.uuid4()
    session.add(
        Event(
            id=event_key,
            type=str(event.type),
            store_id=None,
            created_at=event.timestamp,
            body=event_body(event),
        )
    )
    await session.flush()
    await add_delivery(session, event_key, subscription.id)
    delivery_id = await session.scalar(
        sa.select(WebhookDelivery.id).where(WebhookDelivery.event_id == event_key)
    )
    assert delivery_id is not None
    return delivery_id


async def attempts(
    session: AsyncSession,
    subscriber: Subscriber,
    subscription_id: uuid.UUID,
    *,
    limit: int,
    before: int | None = None,
) -> list[WebhookAttempt]:
    """The subscription's delivery attempts, newest first, `limit` of them, before the one
    numbered `before` (the page's cursor); `SubscriptionNotFound`."""
    await get(session, subscriber, subscription_id)
    query = sa.select(WebhookAttempt).where(WebhookAttempt.subscription_id == subscription_id)
    if before is not None:
        query = query.where(WebhookAttempt.seq < before)
    found = await session.scalars(query.order_by(WebhookAttempt.seq.desc()).limit(limit))
    return list(found)


def _made_by(key_name: str | None) -> sa.ColumnElement[bool]:
    if key_name is None:
        return WebhookSubscription.key_name.is_(None)
    return WebhookSubscription.key_name == key_name


def _visible(subscriber: Subscriber) -> sa.ColumnElement[bool]:
    if subscriber.sees_all:
        return sa.true()
    return _made_by(subscriber.key_name)
