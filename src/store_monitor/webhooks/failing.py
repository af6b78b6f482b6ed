"""A subscription whose deliveries keep failing: marked failing at its first failed attempt,
cleared by a success, and disabled once every attempt has failed for a while (a day by default),
its waiting deliveries failed with it. Times are the database's clock."""

import logging
import uuid
from datetime import timedelta
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import ReportStatus, WebhookDelivery, WebhookSubscription
from store_monitor.work.lease import db_clock, failed_values

log = logging.getLogger(__name__)

DISABLE_AFTER: Final = timedelta(days=1)


def failing_mark(
    subscription_id: uuid.UUID | sa.BindParameter[uuid.UUID],
    *when: sa.ColumnElement[bool],
    succeeded: bool,
) -> sa.Update:
    """The subscription's failing mark after an attempt (if `when` holds): cleared by a success,
    else set if not already."""
    subscription = (WebhookSubscription.id == subscription_id, *when)
    if succeeded:
        # Only when it was failing: concurrent successes then never queue on the row's lock.
        return (
            sa.update(WebhookSubscription)
            .where(*subscription, WebhookSubscription.failing_since.is_not(None))
            .values(failing_since=None)
        )
    failing_since = sa.func.coalesce(WebhookSubscription.failing_since, db_clock())
    return sa.update(WebhookSubscription).where(*subscription).values(failing_since=failing_since)


async def disable_if_failing(
    session: AsyncSession, subscription_id: uuid.UUID, disable_after: timedelta
) -> bool:
    """Disable the subscription if every attempt since `failing_since` failed for at least
    `disable_after` (by the database's clock), failing its waiting deliveries; whether it did."""
    disabled = await session.scalar(
        sa.update(WebhookSubscription)
        .where(
            WebhookSubscription.id == subscription_id,
            WebhookSubscription.disabled_at.is_(None),
            WebhookSubscription.failing_since <= db_clock(plus=-disable_after.total_seconds()),
        )
        .values(
            disabled_at=db_clock(),
            disabled_reason=sa.func.concat(
                "every delivery attempt failed since ",
                sa.func.to_char(
                    sa.func.timezone("UTC", WebhookSubscription.failing_since),
                    'YYYY-MM-DD"T"HH24:MI:SS"Z"',
                ),
            ),
        )
        .returning(WebhookSubscription.id)
    )
    if disabled is None:
        return False
    await session.execute(
        sa.update(WebhookDelivery)
        .where(
            WebhookDelivery.subscription_id == subscription_id,
            WebhookDelivery.status == ReportStatus.pending,
        )
        .values(failed_values("the subscription was disabled"))
    )
    log.warning("webhook %s disabled: every delivery failed for a day", subscription_id)
    return True
