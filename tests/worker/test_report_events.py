"""`report.completed` and `report.failed` are recorded in the transaction that completes or
fails a report: in one job and in shards, on an error and on a give-up, with a delivery to each
subscription asking for them."""

from uuid import UUID

import sqlalchemy as sa

from store_monitor import report_runs, shards
from store_monitor.db.models import (
    Event,
    Report,
    ReportStatus,
    WebhookDelivery,
    WebhookSubscription,
)
from store_monitor.report_runs import REPORTS
from store_monitor.webhooks.events import (
    ReportCompletedEvent,
    ReportFailedEvent,
    parse_event,
)
from store_monitor.work.lease import Runner
from store_monitor.work.table import fail

from .conftest import Sessions, load_report

PUBLIC = "https://monitor.example.com/"


def _runner(*, shard_stores: int = 1000) -> Runner:
    return Runner(
        owner="tests",
        lease_seconds=30,
        timeout_seconds=30,
        max_attempts=3,
        shard_stores=shard_stores,
        public_url=PUBLIC,
    )


async def _report(sessions: Sessions) -> UUID:
    report = Report()
    async with sessions.begin() as session:
        session.add(report)
    return report.id


async def _events(sessions: Sessions) -> list[Event]:
    async with sessions() as session:
        return list(await session.scalars(sa.select(Event).order_by(Event.seq)))


async def test_a_completed_report_announces_its_counts_and_csv(sessionmaker: Sessions) -> None:
    async with sessionmaker.begin() as session:
        subscription = WebhookSubscription(
            url="https://hooks.example.com/",
            secret="whsec_x",
            events=["report.completed"],
            key_name="reports-key",
        )
        session.add(subscription)
    report_id = await _report(sessionmaker)

    assert await report_runs.run_report(sessionmaker, report_id, 1, _runner()) is (
        ReportStatus.complete
    )

    report = await load_report(sessionmaker, report_id)
    [event] = await _events(sessionmaker)
    body = parse_event(event.body)
    assert isinstance(body, ReportCompletedEvent)
    data = body.data
    assert (data.report_id, data.now, data.row_count, data.incident_count) == (
        report_id,
        report.now,
        report.row_count,
        report.incident_count,
    )
    assert data.row_count == 10
    assert data.csv_url == f"https://monitor.example.com/reports/{report_id}/csv"
    async with sessionmaker() as session:
        delivered = (await session.execute(sa.select(WebhookDelivery.subscription_id))).scalars()
        assert list(delivered) == [subscription.id]


async def test_a_sharded_report_announces_once_when_its_last_shard_completes(
    sessionmaker: Sessions,
) -> None:
    report_id = await _report(sessionmaker)
    runner = _runner(shard_stores=3)
    assert await report_runs.run_report(sessionmaker, report_id, 1, runner) is (
        ReportStatus.running
    )
    for shard in range(1, 5):
        assert await _events(sessionmaker) == []
        assert await shards.run_shard(sessionmaker, report_id, shard, 1, runner) is (
            ReportStatus.complete
        )
    [event] = await _events(sessionmaker)
    body = parse_event(event.body)
    assert isinstance(body, ReportCompletedEvent)
    report = await load_report(sessionmaker, report_id)
    assert (body.data.row_count, body.data.incident_count) == (10, report.incident_count)


async def test_a_failed_report_announces_why(sessionmaker: Sessions) -> None:
    report_id = await _report(sessionmaker)
    # A give-up by the sweep fails a report through the same fenced write as an error does.
    assert await fail(sessionmaker, REPORTS, (report_id,), "gave up after 3 attempts")
    [event] = await _events(sessionmaker)
    body = parse_event(event.body)
    assert isinstance(body, ReportFailedEvent)
    assert (body.data.report_id, body.data.error) == (report_id, "gave up after 3 attempts")


async def test_a_failed_shard_announces_its_reports_failure_once(sessionmaker: Sessions) -> None:
    report_id = await _report(sessionmaker)
    runner = _runner(shard_stores=3)
    await report_runs.run_report(sessionmaker, report_id, 1, runner)
    assert await fail(sessionmaker, shards.SHARDS, (report_id, 1), "boom")
    assert await fail(sessionmaker, shards.SHARDS, (report_id, 2), "boom again")
    [event] = await _events(sessionmaker)
    body = parse_event(event.body)
    assert isinstance(body, ReportFailedEvent)
    assert body.data.error.startswith("shard 1 of 4 (")
    assert body.data.error.endswith("): boom")
