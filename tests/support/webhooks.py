"""Webhook states for tests that need them."""

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor.db.models import WebhookSubscription
from store_monitor.webhooks.failing import DISABLE_AFTER, disable_if_failing


async def disable(sessionmaker: async_sessionmaker[AsyncSession], webhook_id: str) -> None:
    """Disable the webhook as a day of failed deliveries does (its waiting deliveries failed)."""
    async with sessionmaker.begin() as session:
        await session.execute(
            sa.update(WebhookSubscription)
            .where(WebhookSubscription.id == uuid.UUID(webhook_id))
            .values(failing_since=sa.func.now() - sa.text("interval '2 days'"))
        )
        assert await disable_if_failing(session, uuid.UUID(webhook_id), DISABLE_AFTER)
