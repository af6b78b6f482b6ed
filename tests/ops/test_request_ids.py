"""Request ids: taken from `X-Request-ID` when valid, generated otherwise, echoed in every
response (a 500 included), on the log lines of the request, and on those of its report's job."""

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from store_monitor.logs import RequestIdFilter, request_id
from store_monitor.settings import Settings
from store_monitor.synthetic import GeneratedFiles
from store_monitor.web.app import create_app
from support.service import (
    TEST_HOST,
    embedded,
    empty_postgres,
    postgres_mode,
    run_burst,
    serve,
    upload_all,
    wait_until_final,
)

from .scraping import scrape

HEADER = "X-Request-ID"


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog, its records stamped with the request id as the service's log handler does."""
    caplog.set_level(logging.INFO, logger="store_monitor")
    stamp = RequestIdFilter()
    caplog.handler.addFilter(stamp)
    yield caplog
    caplog.handler.removeFilter(stamp)


async def test_a_valid_request_id_is_echoed(tmp_path: Path) -> None:
    async with serve(embedded(tmp_path)) as client:
        ok = await client.get("/healthz", headers={HEADER: "lb-7f3a:01HZX+/="})
        missing = await client.get(f"/reports/{uuid4()}", headers={HEADER: "abc-123"})
    assert ok.headers[HEADER] == "lb-7f3a:01HZX+/="
    assert (missing.status_code, missing.headers[HEADER]) == (404, "abc-123")


@pytest.mark.parametrize(
    "sent",
    [None, b"", b"has space", b"x" * 129, b"semi;colon", "ünï".encode(), b"nul\x00"],
)
async def test_otherwise_a_new_id_is_made(tmp_path: Path, sent: bytes | None) -> None:
    headers = {} if sent is None else {HEADER.encode(): sent}
    async with serve(embedded(tmp_path)) as client:
        first = await client.get("/healthz", headers=headers)
        second = await client.get("/healthz", headers=headers)
    assert re.fullmatch(r"[0-9a-f]{32}", first.headers[HEADER])
    assert first.headers[HEADER] != second.headers[HEADER]


@contextlib.asynccontextmanager
async def failing_app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Like `serve`, but answering a request whose route crashes with the app's 500, as a
    server would, rather than raising the error in the test."""
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{TEST_HOST}") as client:
            yield client


async def test_an_unexpected_error_keeps_the_request_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, records: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any) -> None:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr("store_monitor.reports.report_state", broken)
    async with failing_app_client(embedded(tmp_path)) as client:
        response = await client.get(f"/reports/{uuid4()}", headers={HEADER: "boom-1"})
        metrics = await scrape(client)

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert response.headers[HEADER] == "boom-1"
    [logged] = [r for r in records.records if r.name == "store_monitor.web.errors"]
    assert logged.request_id == "boom-1"  # type: ignore[attr-defined]
    assert logged.exc_info is not None
    assert "the disk is on fire" in str(logged.exc_info[1])
    counted = metrics(
        "store_monitor_http_requests_total",
        method="GET",
        route="/reports/{report_id}",
        status="500",
    )
    assert counted == 1


@pytest.mark.parametrize("mode", ["embedded", "postgres"])
async def test_a_reports_job_logs_under_the_id_of_the_request_that_created_it(
    mode: str,
    tmp_path: Path,
    postgres_url: str,
    data_files: GeneratedFiles,
    records: pytest.LogCaptureFixture,
) -> None:
    if mode == "embedded":
        settings = embedded(tmp_path)
    else:
        await empty_postgres(postgres_url)
        settings = postgres_mode(postgres_url)
    async with serve(settings) as client:
        await upload_all(client, data_files)
        response = await client.post("/trigger_report", headers={HEADER: "trigger-42"})
        report_id = response.json()["report_id"]
        if mode == "postgres":
            # Another task, as another process would be: nothing reaches the job but the report.
            assert request_id.get() is None
            await run_burst(settings)
        metadata = await wait_until_final(client, report_id)

    assert metadata["status"] == "Complete"
    assert metadata["request_id"] == "trigger-42"
    job_lines = [
        (r.getMessage(), r.request_id)  # type: ignore[attr-defined]
        for r in records.records
        if r.name == "store_monitor.work.attempt" and r.getMessage().startswith("report ")
    ]
    assert job_lines == [
        (f"report {report_id}: attempt 1 started", "trigger-42"),
        (f"report {report_id}: complete", "trigger-42"),
    ]
