"""A client generated from openapi.json by openapi-python-client drives a live service: a server
process and a worker process on Postgres and Redis, ingest to CSV, same bytes as the CLI; with
authentication required, keys made by `store-monitor keys create`."""

import asyncio
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import polars as pl
import pytest
import sqlalchemy as sa

from live.test_live_api import POLLS as LIVE_POLLS
from store_monitor.db.session import create_engine
from store_monitor.engine import compute_report
from store_monitor.formats import daily_csv_bytes, incidents_csv_bytes
from store_monitor.sources import read_business_hours, read_polls, read_timezones
from store_monitor.synthetic import DEFAULT_END, GeneratedFiles
from support.live import cli_report, new_key
from webhooks.receivers import receiver, respond

from .test_openapi import OPENAPI

PACKAGE = "store_monitor_client"
# openapi-python-client has no request bodies of type text/csv: for the uploads it generates
# the multipart form only, and says so. Anything else it cannot read is a contract problem.
KNOWN_WARNING = "Unsupported content type text/csv"
UPLOADS = {
    "POST /ingest/polls",
    "POST /ingest/business-hours",
    "POST /ingest/timezones",
    "POST /ingest/owners",
}


def generate_client(output: Path) -> str:
    """Run the README's command (`openapi-python-client generate ...`); its messages."""
    completed = subprocess.run(
        [
            # The script `uv run openapi-python-client` runs: this environment's.
            str(Path(sys.executable).with_name("openapi-python-client")),
            "generate",
            *("--path", str(OPENAPI), "--output-path", str(output), "--meta", "uv"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    messages = completed.stdout + completed.stderr
    assert completed.returncode == 0, messages
    return messages


def strict_options(base_url: str) -> dict[str, Any]:
    """The generated client's options: a status the document does not give is an error."""
    return {"base_url": base_url, "raise_on_unexpected_status": True, "timeout": httpx.Timeout(30)}


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The generated client, importable as `store_monitor_client` while the module's tests run."""
    output = tmp_path_factory.mktemp("client") / "store-monitor-client"
    messages = generate_client(output)
    problems = re.findall(r"^\w+ parsing (\S+ \S+) within \S+\n\n(.+)$", messages, re.MULTILINE)
    unexpected = [problem for problem in problems if problem[1] != KNOWN_WARNING]
    assert not unexpected, messages
    assert {operation for operation, _ in problems} <= UPLOADS, messages
    # An operation the generator cannot read is left out, with or without a warning.
    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    for operations in document["paths"].values():
        for operation in operations.values():
            module = (
                output / PACKAGE / "api" / operation["tags"][0] / f"{operation['operationId']}.py"
            )
            assert module.is_file(), f"no {module.name} generated\n{messages}"
    sys.path.insert(0, str(output))
    try:
        yield output
    finally:
        sys.path.remove(str(output))
        for name in [name for name in sys.modules if name.partition(".")[0] == PACKAGE]:
            del sys.modules[name]


async def test_generated_client_runs_the_whole_flow(
    client_package: Path, service: str, service_env: dict[str, str], data: GeneratedFiles
) -> None:
    from store_monitor_client import AuthenticatedClient, Client
    from store_monitor_client.api.health import readyz
    from store_monitor_client.api.ingest import (
        ingest_business_hours,
        ingest_polls,
        ingest_timezones,
    )
    from store_monitor_client.api.reports import (
        delete_report,
        download_report_csv,
        download_report_daily_csv,
        download_report_incidents_csv,
        get_report,
        get_report_metadata,
        get_report_store,
        get_report_summary,
        get_store_history,
        list_reports,
        trigger_report,
    )
    from store_monitor_client.models import (
        IngestBusinessHoursFilesBody,
        IngestPollsFilesBody,
        IngestResponse,
        IngestTimezonesFilesBody,
        ReportList,
        ReportMetadata,
        ReportSummary,
        StoreHistory,
        StoreReport,
        TriggerReportRequest,
        TriggerReportResponse,
        WireReportStatus,
    )
    from store_monitor_client.types import File

    as_of = DEFAULT_END - timedelta(hours=2)
    loader = await new_key(service_env, "--name", "loader", "--scope", "ingest")
    reader = await new_key(service_env, "--name", "reader", "--scope", "reports")
    options = strict_options(service)
    async with Client(**options) as anonymous:
        # The probes are open; anything else needs a key.
        assert (await readyz.asyncio(client=anonymous)) is not None
        refused = await trigger_report.asyncio_detailed(client=anonymous)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")

    async with AuthenticatedClient(token=loader, **options) as client:
        uploads: list[tuple[Any, Any, Path]] = [
            (ingest_polls, IngestPollsFilesBody, data.store_status),
            (ingest_business_hours, IngestBusinessHoursFilesBody, data.menu_hours),
            (ingest_timezones, IngestTimezonesFilesBody, data.timezones),
        ]
        for operation, body, path in uploads:
            with path.open("rb") as payload:
                upload = File(payload=payload, file_name=path.name, mime_type="text/csv")
                ingested = await operation.asyncio(client=client, body=body(file=upload))
            assert isinstance(ingested, IngestResponse), ingested
            assert ingested.rows_added == ingested.rows_received > 0
            assert ingested.stores > 0

        # An ingest key reads no reports.
        assert (await trigger_report.asyncio_detailed(client=client)).status_code == 403

    async with AuthenticatedClient(token=reader, **options) as client:
        triggered = await trigger_report.asyncio(
            client=client, body=TriggerReportRequest(as_of=as_of)
        )
        assert isinstance(triggered, TriggerReportResponse), triggered

        async with asyncio.timeout(60):
            while True:
                metadata = await get_report_metadata.asyncio(
                    client=client, report_id=triggered.report_id
                )
                assert isinstance(metadata, ReportMetadata), metadata
                if metadata.status in (WireReportStatus.COMPLETE, WireReportStatus.FAILED):
                    break
                await asyncio.sleep(0.1)
        assert metadata.status is WireReportStatus.COMPLETE, metadata.error
        assert metadata.now == as_of
        assert metadata.row_count == data.stores

        downloaded = await download_report_csv.asyncio_detailed(
            client=client, report_id=triggered.report_id
        )
        assert downloaded.status_code == 200
        assert downloaded.headers["content-type"].startswith("text/csv")
        # The route that answers JSON or CSV: the client hands back either as text.
        polled = await get_report.asyncio(client=client, report_id=triggered.report_id)
        assert polled == downloaded.content.decode()

        details = compute_report(
            read_polls(data.store_status),
            read_business_hours(data.menu_hours),
            read_timezones(data.timezones),
            as_of=as_of,
        )
        assert details.incidents is not None
        assert details.daily is not None
        assert metadata.incident_count == details.incidents.height
        incidents = await download_report_incidents_csv.asyncio_detailed(
            client=client, report_id=triggered.report_id
        )
        assert incidents.content == incidents_csv_bytes(details.incidents)
        store_id = details.incidents["store_id"][0]
        daily = await download_report_daily_csv.asyncio_detailed(
            client=client, report_id=triggered.report_id, store_id=store_id
        )
        assert daily.content == daily_csv_bytes(
            details.daily.filter(pl.col("store_id") == store_id)
        )
        store = await get_report_store.asyncio(
            client=client, report_id=triggered.report_id, store_id=store_id
        )
        assert isinstance(store, StoreReport), store
        assert store.store_id == store_id
        assert (
            len(store.incidents) == details.incidents.filter(pl.col("store_id") == store_id).height
        )
        assert [day.date for day in store.daily] == details.daily.filter(
            pl.col("store_id") == store_id
        )["date"].to_list()
        missing = await get_report_store.asyncio_detailed(
            client=client, report_id=triggered.report_id, store_id="no-such-store"
        )
        assert missing.status_code == 404
        summary = await get_report_summary.asyncio(client=client, report_id=triggered.report_id)
        assert isinstance(summary, ReportSummary), summary
        assert summary.week.stores == data.stores
        assert summary.week.incidents == details.incidents.height
        assert summary.previous is None
        history = await get_store_history.asyncio(client=client, store_id=store_id, limit=5)
        assert isinstance(history, StoreHistory), history
        assert [entry.report_id for entry in history.reports] == [triggered.report_id]
        assert history.reports[0].figures == store.figures
        never = await get_store_history.asyncio_detailed(client=client, store_id="no-such-store")
        assert never.status_code == 404
        listed = await list_reports.asyncio(
            client=client, status=WireReportStatus.COMPLETE, limit=10
        )
        assert isinstance(listed, ReportList), listed
        assert [report.report_id for report in listed.reports] == [triggered.report_id]
        assert listed.next_cursor is None

        deleted = await delete_report.asyncio_detailed(client=client, report_id=triggered.report_id)
        assert deleted.status_code == 204
        gone = await get_report_metadata.asyncio_detailed(
            client=client, report_id=triggered.report_id
        )
        assert gone.status_code == 404
        listed = await list_reports.asyncio(client=client)
        assert listed is not None
        assert listed.reports == []

    # The raw body, not the client's decoded text: the bytes must be the CLI's exactly.
    assert downloaded.content == await cli_report(data, as_of.isoformat())


async def test_generated_client_manages_schedules_and_the_worker_fires_them(
    client_package: Path, service: str, service_env: dict[str, str], postgres_url: str
) -> None:
    from store_monitor_client import AuthenticatedClient
    from store_monitor_client.api.reports import get_report_metadata
    from store_monitor_client.api.schedules import (
        create_schedule,
        delete_schedule,
        get_schedule,
        list_schedules,
    )
    from store_monitor_client.models import (
        CreateScheduleRequest,
        ErrorResponse,
        ReportMetadata,
        ScheduleList,
        ScheduleResponse,
    )

    operator = await new_key(service_env, "--name", "operator", "--scope", "reports")
    options: dict[str, Any] = {"base_url": service, "timeout": httpx.Timeout(30)}
    async with AuthenticatedClient(token=operator, **options) as client:
        created = await create_schedule.asyncio(
            client=client, body=CreateScheduleRequest(cron="0 6 * * 1", timezone="America/New_York")
        )
        assert isinstance(created, ScheduleResponse), created
        assert created.next_fire_local.hour == 6
        assert created.next_fire_at == created.next_fire_local
        refused = await create_schedule.asyncio_detailed(
            client=client, body=CreateScheduleRequest(cron="0 6 * *")
        )
        assert refused.status_code == 422
        assert isinstance(refused.parsed, ErrorResponse)
        listed = await list_schedules.asyncio(client=client, limit=10)
        assert isinstance(listed, ScheduleList), listed
        assert [s.schedule_id for s in listed.schedules] == [created.schedule_id]

        # As if created a week ago and due a minute ago: the worker's next sweep fires it.
        await make_due(postgres_url, created.schedule_id)
        async with asyncio.timeout(60):
            while True:
                fetched = await get_schedule.asyncio(client=client, schedule_id=created.schedule_id)
                assert isinstance(fetched, ScheduleResponse), fetched
                if fetched.last_report_id:
                    break
                await asyncio.sleep(0.2)
        assert fetched.next_fire_at > fetched.last_fired_at
        async with asyncio.timeout(60):
            while True:
                report = await get_report_metadata.asyncio(
                    client=client, report_id=fetched.last_report_id
                )
                assert isinstance(report, ReportMetadata), report
                if report.status.value in ("Complete", "Failed"):
                    break
                await asyncio.sleep(0.2)
        assert report.status.value == "Complete", report.error

        deleted = await delete_schedule.asyncio_detailed(
            client=client, schedule_id=created.schedule_id
        )
        assert deleted.status_code == 204
        gone = await get_schedule.asyncio_detailed(client=client, schedule_id=created.schedule_id)
        assert gone.status_code == 404


async def make_due(url: str, schedule_id: UUID) -> None:
    engine = create_engine(url, process_name="store-monitor-tests")
    try:
        async with engine.begin() as connection:
            await connection.execute(
                sa.text(
                    "UPDATE report_schedules SET created_at = now() - interval '7 days', "
                    "next_due_at = now() - interval '1 minute' WHERE id = :id"
                ),
                {"id": schedule_id},
            )
    finally:
        await engine.dispose()


async def test_generated_client_manages_webhooks(
    client_package: Path, service: str, service_env: dict[str, str]
) -> None:
    from store_monitor_client import AuthenticatedClient
    from store_monitor_client.api.webhooks import (
        create_webhook,
        delete_webhook,
        get_webhook,
        list_webhook_deliveries,
        list_webhooks,
        rotate_webhook_secret,
        test_webhook,
        update_webhook,
    )
    from store_monitor_client.models import (
        CreateWebhookRequest,
        DeliveryAttemptList,
        EventType,
        RotateWebhookSecretRequest,
        UpdateWebhookRequest,
        Webhook,
        WebhookList,
        WebhookTestSent,
        WebhookWithSecret,
    )

    reader = await new_key(service_env, "--name", "subscriber", "--scope", "reports")
    options = strict_options(service)
    async with (
        receiver(respond(204)) as hook,
        AuthenticatedClient(token=reader, **options) as client,
    ):
        created = await create_webhook.asyncio(
            client=client,
            body=CreateWebhookRequest(url=hook.url(), events=[EventType.REPORT_FAILED]),
        )
        assert isinstance(created, WebhookWithSecret), created
        assert created.secret.startswith("whsec_")
        listed = await list_webhooks.asyncio(client=client)
        assert isinstance(listed, WebhookList), listed
        assert [webhook.id for webhook in listed.webhooks] == [created.id]

        sent = await test_webhook.asyncio(client=client, webhook_id=created.id)
        assert isinstance(sent, WebhookTestSent), sent
        async with asyncio.timeout(30):
            while True:
                attempts = await list_webhook_deliveries.asyncio(
                    client=client, webhook_id=created.id
                )
                assert isinstance(attempts, DeliveryAttemptList), attempts
                if attempts.attempts:
                    break
                await asyncio.sleep(0.1)
        [attempt] = attempts.attempts
        assert attempt.status_code == 204
        [request] = hook.requests
        assert request.headers["webhook-id"] == attempt.webhook_id

        rotated = await rotate_webhook_secret.asyncio(
            client=client,
            webhook_id=created.id,
            body=RotateWebhookSecretRequest(keep_previous_hours=1),
        )
        assert isinstance(rotated, WebhookWithSecret), rotated
        assert rotated.secret != created.secret
        updated = await update_webhook.asyncio(
            client=client,
            webhook_id=created.id,
            body=UpdateWebhookRequest(events=[EventType.INCIDENT_OPENED]),
        )
        assert isinstance(updated, Webhook), updated
        assert (updated.url, updated.events) == (hook.url(), [EventType.INCIDENT_OPENED])
        read = await get_webhook.asyncio(client=client, webhook_id=created.id)
        assert isinstance(read, Webhook), read
        assert read.enabled
        assert read.previous_secret_until == rotated.previous_secret_until
        deleted = await delete_webhook.asyncio_detailed(client=client, webhook_id=created.id)
        assert deleted.status_code == 204
        gone = await get_webhook.asyncio_detailed(client=client, webhook_id=created.id)
        assert gone.status_code == 404


async def test_generated_client_reads_the_stores_down_now(
    client_package: Path, service: str, service_env: dict[str, str]
) -> None:
    from store_monitor_client import AuthenticatedClient
    from store_monitor_client.api.ingest import ingest_polls
    from store_monitor_client.api.live import get_live
    from store_monitor_client.models import ErrorResponse, IngestPollsFilesBody, LiveView
    from store_monitor_client.types import File

    loader = await new_key(service_env, "--name", "loader", "--scope", "ingest")
    reader = await new_key(service_env, "--name", "reader", "--scope", "reports")
    options = strict_options(service)
    async with AuthenticatedClient(token=reader, **options) as client:
        before = await get_live.asyncio(client=client)
        assert isinstance(before, LiveView), before
        assert (before.now, before.total, before.stores) == (None, 0, [])

    async with AuthenticatedClient(token=loader, **options) as client:
        upload = File(payload=io.BytesIO(LIVE_POLLS.encode()), file_name="polls.csv")
        await ingest_polls.asyncio(client=client, body=IngestPollsFilesBody(file=upload))

    async with AuthenticatedClient(token=reader, **options) as client:
        async with asyncio.timeout(60):  # the worker process evaluates the upload
            while True:
                view = await get_live.asyncio(client=client)
                assert isinstance(view, LiveView), view
                if view.now is not None and view.now == view.latest_poll_at:
                    break
                await asyncio.sleep(0.1)
        assert view.now == datetime(2023, 1, 20, 12, tzinfo=UTC)
        assert view.total == 2
        assert [(s.store_id, s.since, s.minutes) for s in view.stores] == [
            ("s1", datetime(2023, 1, 20, 10, 30, tzinfo=UTC), 90.0),
            ("s2", datetime(2023, 1, 20, 11, 30, tzinfo=UTC), 30.0),
        ]
        second = await get_live.asyncio(client=client, offset=1, limit=1)
        assert isinstance(second, LiveView), second
        assert (second.total, second.offset, second.limit) == (2, 1, 1)
        assert [s.store_id for s in second.stores] == ["s2"]
        one = await get_live.asyncio(client=client, store_id="s1")
        assert isinstance(one, LiveView), one
        assert [s.store_id for s in one.stores] == ["s1"]
        up = await get_live.asyncio(client=client, store_id="s3")
        assert isinstance(up, LiveView), up
        assert (up.total, up.stores) == (0, [])
        refused = await get_live.asyncio_detailed(client=client, limit=0)
        assert refused.status_code == 422
        assert isinstance(refused.parsed, ErrorResponse)
