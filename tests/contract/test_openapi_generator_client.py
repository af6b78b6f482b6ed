"""A client generated from openapi.json by openapi-generator (`-g python`, a Java tool) drives a
live service: ingest, trigger, poll `GET /get_report` until the CSV comes, the same bytes as the
CLI's. The client is generated once per test session."""

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from uuid import uuid4

import pytest

from live.test_live_api import POLLS as LIVE_POLLS
from store_monitor.synthetic import DEFAULT_END, GeneratedFiles
from support.live import cli_report, new_key
from webhooks.receivers import receiver, respond

from .test_openapi import OPENAPI

PACKAGE = "store_monitor_openapi_client"
GENERATOR = Path(sys.executable).with_name("openapi-generator-cli")


def generate_client(output: Path) -> None:
    """Run the README's command (`openapi-generator-cli generate ... -g python`)."""
    completed = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            *("-i", str(OPENAPI), "-g", "python", "-o", str(output)),
            *("--package-name", PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]


@pytest.fixture(scope="session")
def openapi_generator_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The generated package, imported; generated once per session (the JVM takes seconds)."""
    if shutil.which("java") is None:
        if os.environ.get("CI"):
            pytest.fail("openapi-generator needs java: CI must install default-jre-headless")
        pytest.skip("openapi-generator needs java (apt-get install default-jre-headless)")
    output = tmp_path_factory.mktemp("openapi-generator") / "store-monitor-client"
    generate_client(output)
    # Its dependencies (pydantic, urllib3, python-dateutil) are the project's dev dependencies:
    # importing it from where it was generated is installing it.
    sys.path.insert(0, str(output))
    try:
        yield __import__(PACKAGE)
    finally:
        sys.path.remove(str(output))
        for name in [name for name in sys.modules if name.partition(".")[0] == PACKAGE]:
            del sys.modules[name]


def _drive(
    client: ModuleType, base_url: str, key: str, data: GeneratedFiles, as_of: object
) -> bytes:
    """Upload, trigger, poll `get_report` until it is no longer Running; its raw CSV body."""
    configuration = client.Configuration(host=base_url, access_token=key)
    with client.ApiClient(configuration) as api_client:
        assert client.HealthApi(api_client).readyz().status == "ready"

        ingest = client.IngestApi(api_client)
        for upload, path in (
            (ingest.ingest_polls, data.store_status),
            (ingest.ingest_business_hours, data.menu_hours),
            (ingest.ingest_timezones, data.timezones),
        ):
            # The generator sends the first content type of the request body: text/csv.
            ingested = upload(path.read_text(encoding="utf-8"))
            assert ingested.rows_added == ingested.rows_received > 0

        reports = client.ReportsApi(api_client)
        triggered = reports.trigger_report(
            trigger_report_request=client.TriggerReportRequest(as_of=as_of)
        )
        deadline = time.monotonic() + 60
        while True:
            polled = reports.get_report_with_http_info(triggered.report_id)
            assert polled.status_code == 200
            # A plain dict of the headers as the server spelled them: lower case, from uvicorn.
            status = {name.lower(): value for name, value in polled.headers.items()}
            if status["x-report-status"] != "Running":
                break
            assert time.monotonic() < deadline, "the report is still running after 60 s"
            time.sleep(0.1)
        assert status["x-report-status"] == "Complete", polled.raw_data
        # Handed back as text, the CSV it is; its bytes are the raw body.
        assert isinstance(polled.data, str)
        assert polled.data.encode() == polled.raw_data

        metadata = reports.get_report_metadata(triggered.report_id)
        assert metadata.status == client.WireReportStatus.COMPLETE
        assert metadata.row_count == data.stores
        download = reports.download_report_csv_with_http_info(triggered.report_id)
        assert download.raw_data == polled.raw_data
        summary = reports.get_report_summary(triggered.report_id)
        assert summary.week.stores == data.stores
        assert summary.change is None
        store_id = polled.raw_data.splitlines()[1].decode().partition(",")[0]
        history = reports.get_store_history(store_id, limit=3)
        assert [entry.report_id for entry in history.reports] == [triggered.report_id]

        # Errors are the client's ApiException with the JSON error body, not a parse failure.
        with pytest.raises(client.ApiException) as missing:
            reports.get_report(uuid4())
        assert missing.value.status == 404
        assert missing.value.data.error.code == "report_not_found"
        raw: bytes = polled.raw_data
        return raw


async def test_openapi_generator_client_runs_the_whole_flow(
    openapi_generator_client: ModuleType,
    service: str,
    service_env: dict[str, str],
    data: GeneratedFiles,
) -> None:
    as_of = DEFAULT_END - timedelta(hours=2)
    key = await new_key(service_env, "--name", "operator", "--scope", "admin")
    # The generated client is synchronous (urllib3): off the event loop.
    csv = await asyncio.to_thread(_drive, openapi_generator_client, service, key, data, as_of)
    assert csv == await cli_report(data, as_of.isoformat())


def _drive_schedules(client: ModuleType, base_url: str, key: str) -> None:
    """Create, read, list and delete a schedule; a bad one is the client's ApiException."""
    configuration = client.Configuration(host=base_url, access_token=key)
    with client.ApiClient(configuration) as api_client:
        schedules = client.SchedulesApi(api_client)
        created = schedules.create_schedule(
            client.CreateScheduleRequest(cron="30 2 * * *", timezone="America/New_York")
        )
        assert (created.next_fire_local.hour, created.next_fire_local.minute) in ((2, 30), (3, 0))
        assert created.next_fire_at == created.next_fire_local
        assert schedules.get_schedule(created.schedule_id) == created
        listed = schedules.list_schedules(limit=5)
        assert [s.schedule_id for s in listed.schedules] == [created.schedule_id]
        with pytest.raises(client.ApiException) as refused:
            schedules.create_schedule(client.CreateScheduleRequest(cron="0 6 * * *", timezone="X"))
        assert refused.value.status == 422
        assert refused.value.data.error.code == "invalid_request"
        schedules.delete_schedule(created.schedule_id)
        with pytest.raises(client.ApiException) as gone:
            schedules.get_schedule(created.schedule_id)
        assert gone.value.status == 404
        assert gone.value.data.error.code == "schedule_not_found"


async def test_openapi_generator_client_manages_schedules(
    openapi_generator_client: ModuleType, service: str, service_env: dict[str, str]
) -> None:
    key = await new_key(service_env, "--name", "operator", "--scope", "reports")
    await asyncio.to_thread(_drive_schedules, openapi_generator_client, service, key)


def _drive_webhooks(client: ModuleType, base_url: str, key: str, hook_url: str) -> list[int]:
    """Subscribe, test, list the attempts until one is there, delete: the attempts' statuses."""
    configuration = client.Configuration(host=base_url, access_token=key)
    with client.ApiClient(configuration) as api_client:
        webhooks = client.WebhooksApi(api_client)
        created = webhooks.create_webhook(client.CreateWebhookRequest(url=hook_url))
        assert created.secret.startswith("whsec_")
        assert [w.id for w in webhooks.list_webhooks().webhooks] == [created.id]
        webhooks.test_webhook(created.id)
        deadline = time.monotonic() + 30
        while not (attempts := webhooks.list_webhook_deliveries(created.id).attempts):
            assert time.monotonic() < deadline, "no delivery attempt after 30 s"
            time.sleep(0.1)
        assert webhooks.get_webhook(created.id).enabled
        webhooks.delete_webhook(created.id)
        with pytest.raises(client.ApiException) as missing:
            webhooks.get_webhook(created.id)
        assert missing.value.status == 404
        assert missing.value.data.error.code == "webhook_not_found"
        return [attempt.status_code for attempt in attempts]


async def test_openapi_generator_client_manages_webhooks(
    openapi_generator_client: ModuleType, service: str, service_env: dict[str, str]
) -> None:
    key = await new_key(service_env, "--name", "subscriber", "--scope", "reports")
    async with receiver(respond(204)) as hook:
        statuses = await asyncio.to_thread(
            _drive_webhooks, openapi_generator_client, service, key, hook.url()
        )
    assert statuses == [204]
    assert len(hook.requests) == 1


def _drive_live(client: ModuleType, base_url: str, loader: str, reader: str) -> None:
    """Upload polls, wait until the worker has evaluated them, read the stores down now: all,
    a page, one store."""
    with client.ApiClient(client.Configuration(host=base_url, access_token=loader)) as api_client:
        client.IngestApi(api_client).ingest_polls(LIVE_POLLS)
    with client.ApiClient(client.Configuration(host=base_url, access_token=reader)) as api_client:
        live = client.LiveApi(api_client)
        deadline = time.monotonic() + 60
        while (view := live.get_live()).now is None or view.now != view.latest_poll_at:
            assert time.monotonic() < deadline, "the upload is not evaluated after 60 s"
            time.sleep(0.1)
        assert view.now == datetime(2023, 1, 20, 12, tzinfo=UTC)
        assert [(s.store_id, s.since, s.minutes) for s in view.stores] == [
            ("s1", datetime(2023, 1, 20, 10, 30, tzinfo=UTC), 90.0),
            ("s2", datetime(2023, 1, 20, 11, 30, tzinfo=UTC), 30.0),
        ]
        second = live.get_live(offset=1, limit=1)
        assert (second.total, [s.store_id for s in second.stores]) == (2, ["s2"])
        assert [s.store_id for s in live.get_live(store_id="s1").stores] == ["s1"]
        up = live.get_live(store_id="s3")
        assert (up.total, up.stores) == (0, [])
        with pytest.raises(client.ApiException) as refused:
            live.get_live(store_id="=cmd")  # a spreadsheet formula: not a store id
        assert refused.value.status == 422
        assert refused.value.data.error.code == "invalid_request"


async def test_openapi_generator_client_reads_the_stores_down_now(
    openapi_generator_client: ModuleType, service: str, service_env: dict[str, str]
) -> None:
    loader = await new_key(service_env, "--name", "loader", "--scope", "ingest")
    reader = await new_key(service_env, "--name", "reader", "--scope", "reports")
    await asyncio.to_thread(_drive_live, openapi_generator_client, service, loader, reader)
