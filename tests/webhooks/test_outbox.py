"""The outbox: events recorded in the caller's transaction, in order, with the bytes to send."""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import Event
from store_monitor.webhooks.events import (
    IncidentOpenedData,
    IncidentOpenedEvent,
    ReportFailedData,
    ReportFailedEvent,
    parse_event,
)
from store_monitor.webhooks.outbox import record

AT = datetime(2023, 1, 24, 10, 44, 30, tzinfo=UTC)
OPENED = IncidentOpenedEvent(timestamp=AT, data=IncidentOpenedData(store_id="s/1 é", started_at=AT))
FAILED = ReportFailedEvent(
    timestamp=AT, data=ReportFailedData(report_id=uuid.uuid4(), now=None, error="boom")
)


async def test_events_are_stored_in_order_with_their_bodies(db_session: AsyncSession) -> None:
    ids = await record(db_session, [OPENED, FAILED])
    stored = (await db_session.scalars(sa.select(Event).order_by(Event.seq))).all()
    assert [event.id for event in stored] == ids
    assert [(event.type, event.store_id) for event in stored] == [
        ("incident.opened", "s/1 é"),
        ("report.failed", None),
    ]
    assert [parse_event(event.body) for event in stored] == [OPENED, FAILED]
    assert all(event.created_at == AT for event in stored)


async def test_a_rolled_back_transaction_records_nothing(db_session: AsyncSession) -> None:
    async with db_session.begin_nested() as nested:
        await record(db_session, [OPENED])
        await nested.rollback()
    assert await db_session.scalar(sa.select(sa.func.count()).select_from(Event)) == 0


async def test_nothing_to_record_writes_nothing(db_session: AsyncSession) -> None:
    assert await record(db_session, []) == []
    assert await db_session.scalar(sa.select(sa.func.count()).select_from(Event)) == 0
