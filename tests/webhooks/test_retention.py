"""The outbox's retention: finished deliveries (with their attempts) and then undelivered events
go once older than the retention; nothing still to be delivered is ever deleted."""

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor import jobs
from store_monitor.db.models import (
    Event,
    ReportStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from store_monitor.runtime import upkeep_of
from store_monitor.settings import Settings
from store_monitor.webhooks.events import ReportFailedData, ReportFailedEvent
from store_monitor.webhooks.outbox import record
from store_monitor.webhooks.retention import delete_delivered_before
from store_monitor.webhooks.signing import new_secret
from support.work import RecordingQueue

Sessions = async_sessionmaker[AsyncSession]

NOW = datetime.now(UTC)
CUTOFF = NOW - timedelta(days=30)
LONG_AGO = NOW - timedelta(days=40)
LATELY = NOW - timedelta(days=1)


async def _subscribe(sessions: Sessions) -> uuid.UUID:
    async with sessions.begin() as session:
        subscription = WebhookSubscription(
            url="https://hooks.example.com/", secret=new_secret(), events=["report.failed"]
        )
        session.add(subscription)
    return subscription.id


async def _event(
    sessions: Sessions,
    *,
    recorded_at: datetime = LONG_AGO,
    status: ReportStatus | None = ReportStatus.complete,
    finished_at: datetime | None = LONG_AGO,
) -> uuid.UUID:
    """An event recorded at `recorded_at`, its deliveries (one per subscription) left `status`,
    finished at `finished_at`, with one attempt each; its id."""
    event = ReportFailedEvent(
        timestamp=LONG_AGO, data=ReportFailedData(report_id=uuid.uuid4(), now=None, error="x")
    )
    async with sessions.begin() as session:
        [event_id] = await record(session, [event])
        await session.execute(
            sa.update(Event).where(Event.id == event_id).values(recorded_at=recorded_at)
        )
        deliveries = (
            await session.execute(
                sa.update(WebhookDelivery)
                .where(WebhookDelivery.event_id == event_id)
                .values(status=status, finished_at=finished_at, attempts=1)
                .returning(WebhookDelivery.id, WebhookDelivery.subscription_id)
            )
        ).all()
        for delivery_id, subscription_id in deliveries:
            session.add(
                WebhookAttempt(
                    subscription_id=subscription_id,
                    delivery_id=delivery_id,
                    event_id=event_id,
                    event_type="report.failed",
                    attempt=1,
                    sent_at=finished_at or LATELY,
                    status_code=500,
                    duration_ms=1.0,
                )
            )
    return event_id


async def _left(sessions: Sessions) -> tuple[set[uuid.UUID], set[uuid.UUID], set[uuid.UUID]]:
    """The events, and the events of the deliveries and of the attempts, still stored."""
    async with sessions() as session:
        events = set(await session.scalars(sa.select(Event.id)))
        delivered = set(await session.scalars(sa.select(WebhookDelivery.event_id)))
        attempted = set(await session.scalars(sa.select(WebhookAttempt.event_id)))
    return events, delivered, attempted


async def test_old_finished_deliveries_go_with_their_attempts_and_then_their_events(
    sessions: Sessions,
) -> None:
    await _subscribe(sessions)
    await _event(sessions, status=ReportStatus.complete)
    await _event(sessions, status=ReportStatus.failed)

    deleted = await delete_delivered_before(sessions, CUTOFF)

    assert (deleted.deliveries, deleted.events) == (2, 2)
    assert await _left(sessions) == (set(), set(), set())


async def test_a_pending_delivery_keeps_itself_its_attempts_and_its_event(
    sessions: Sessions,
) -> None:
    await _subscribe(sessions)
    retrying = await _event(sessions, status=ReportStatus.pending, finished_at=None)
    running = await _event(sessions, status=ReportStatus.running, finished_at=None)

    deleted = await delete_delivered_before(sessions, CUTOFF)

    assert (deleted.deliveries, deleted.events) == (0, 0)
    kept = {retrying, running}
    assert await _left(sessions) == (kept, kept, kept)


async def test_a_delivery_finished_lately_is_kept_however_old_its_event(
    sessions: Sessions,
) -> None:
    await _subscribe(sessions)
    event_id = await _event(sessions, status=ReportStatus.complete, finished_at=LATELY)

    await delete_delivered_before(sessions, CUTOFF)

    assert await _left(sessions) == ({event_id}, {event_id}, {event_id})


async def test_an_event_waits_for_its_last_pending_delivery(sessions: Sessions) -> None:
    await _subscribe(sessions)
    await _subscribe(sessions)
    event_id = await _event(sessions)
    async with sessions.begin() as session:
        # One of its two deliveries is still being retried.
        await session.execute(
            sa.update(WebhookDelivery)
            .where(WebhookDelivery.id == sa.select(WebhookDelivery.id).limit(1).scalar_subquery())
            .values(status=ReportStatus.pending, finished_at=None)
        )

    deleted = await delete_delivered_before(sessions, CUTOFF)

    assert (deleted.deliveries, deleted.events) == (1, 0)
    async with sessions() as session:
        pending = (await session.scalars(sa.select(WebhookDelivery.status))).all()
    assert pending == [ReportStatus.pending]
    assert (await _left(sessions))[0] == {event_id}


async def test_events_without_deliveries_go_once_recorded_before_the_cutoff(
    sessions: Sessions,
) -> None:
    # No subscription: the events have no delivery. The old one's timestamp is as old as the
    # recent one's (a loaded history's): retention goes by when they were recorded.
    await _event(sessions, recorded_at=LONG_AGO)
    recent = await _event(sessions, recorded_at=LATELY)

    deleted = await delete_delivered_before(sessions, CUTOFF)

    assert (deleted.deliveries, deleted.events) == (0, 1)
    assert (await _left(sessions))[0] == {recent}


async def test_many_are_deleted_in_batches(sessions: Sessions) -> None:
    await _subscribe(sessions)
    for _ in range(5):
        await _event(sessions)

    deleted = await delete_delivered_before(sessions, CUTOFF, batch=2)

    assert (deleted.deliveries, deleted.events) == (5, 5)
    assert await _left(sessions) == (set(), set(), set())


async def test_the_upkeep_round_keeps_the_outbox_retention(sessions: Sessions) -> None:
    await _subscribe(sessions)
    await _event(sessions, finished_at=NOW - timedelta(days=8))
    kept = await _event(sessions, finished_at=NOW - timedelta(days=6))

    await jobs.upkeep_round(sessions, RecordingQueue(), upkeep_of(Settings(event_retention_days=7)))

    assert await _left(sessions) == ({kept}, {kept}, {kept})
