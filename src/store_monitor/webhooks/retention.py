"""The outbox's retention: what was delivered (or given up) long enough ago is deleted.

A delivery that is complete or failed, and finished before the cutoff, goes with its attempts;
then an event recorded before the cutoff goes once no delivery of it is left. A pending or
running delivery is never deleted, so neither is its event. Each transaction deletes one batch,
so that none holds its locks for long.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import ReturningDelete

from store_monitor.db.models import Event, ReportStatus, WebhookDelivery

BATCH: Final = 500
_FINISHED: Final = (ReportStatus.complete, ReportStatus.failed)


@dataclass(frozen=True, slots=True)
class Deleted:
    deliveries: int
    events: int


async def delete_delivered_before(
    sessionmaker: async_sessionmaker[AsyncSession], cutoff: datetime, *, batch: int = BATCH
) -> Deleted:
    """Delete the deliveries finished before `cutoff` (their attempts with them), then the
    events recorded before it with no delivery left, `batch` rows per transaction."""
    finished = (
        WebhookDelivery.status.in_(_FINISHED),
        WebhookDelivery.finished_at < cutoff,
    )
    deliveries = await _in_batches(
        sessionmaker,
        sa.delete(WebhookDelivery)
        .where(
            WebhookDelivery.id.in_(
                sa.select(WebhookDelivery.id).where(*finished).limit(batch).scalar_subquery()
            ),
            # Again on the locked rows: a delivery is only ever deleted finished.
            *finished,
        )
        .returning(WebhookDelivery.id),
        batch,
    )
    undelivered = (
        Event.recorded_at < cutoff,
        ~sa.exists().where(WebhookDelivery.event_id == Event.id),
    )
    events = await _in_batches(
        sessionmaker,
        sa.delete(Event)
        .where(
            Event.seq.in_(
                sa.select(Event.seq)
                .where(*undelivered)
                .order_by(Event.seq)
                .limit(batch)
                .scalar_subquery()
            ),
            *undelivered,
        )
        .returning(Event.seq),
        batch,
    )
    return Deleted(deliveries=deliveries, events=events)


async def _in_batches(
    sessionmaker: async_sessionmaker[AsyncSession], delete: ReturningDelete[Any], batch: int
) -> int:
    """Run `delete` (of at most `batch` rows, returning one column) until it deletes fewer;
    how many rows it deleted in all."""
    deleted = 0
    while True:
        async with sessionmaker.begin() as session:
            count = len((await session.execute(delete)).all())
        deleted += count
        if count < batch:
            return deleted
