"""`GET /metrics`: requests by route template, reports and their durations from the database,
ingested rows, the queue's depth; in both modes."""

import asyncio
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.engine import compute_report
from store_monitor.synthetic import GeneratedFiles
from store_monitor.web.observability import Metrics
from store_monitor.work.queue import JobState
from store_monitor.work.table import Key
from support.service import (
    embedded,
    empty_postgres,
    postgres_mode,
    run_burst,
    serve,
    upload_all,
    wait_until_final,
)

from .scraping import Samples, scrape

REQUESTS = "store_monitor_http_requests_total"
LATENCY_COUNT = "store_monitor_http_request_duration_seconds_count"
DURATION = "store_monitor_report_duration_seconds"


async def trigger(client: httpx.AsyncClient) -> str:
    response = await client.post("/trigger_report")
    assert response.status_code == 202, response.text
    report_id: str = response.json()["report_id"]
    return report_id


def assert_ingested(metrics: Samples, bodies: dict[str, dict[str, Any]], times: int = 1) -> None:
    for kind, body in bodies.items():
        received = metrics("store_monitor_ingest_rows_received_total", kind=kind)
        assert received == times * body["rows_received"]
        assert metrics("store_monitor_ingest_rows_added_total", kind=kind) == body["rows_added"]


def assert_durations(metrics: Samples, *, count: int, at_least: float = 0.0) -> None:
    assert metrics(f"{DURATION}_count") == count
    total = metrics(f"{DURATION}_sum")
    assert total is not None
    assert total >= at_least
    buckets = [(float(s.labels["le"]), s.value) for s in metrics.named(f"{DURATION}_bucket")]
    assert buckets == sorted(buckets)  # cumulative: counts grow with the bound
    assert buckets[-1] == (float("inf"), count)


async def test_requests_are_counted_by_route_template_method_and_status(tmp_path: Path) -> None:
    async with serve(embedded(tmp_path)) as client:
        before = await scrape(client)
        for _ in range(2):
            assert (await client.get(f"/reports/{uuid4()}")).status_code == 404
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/no/such/path")).status_code == 404
        assert (await client.request("BREW", "/healthz")).status_code == 405
        after = await scrape(client)
        paths = (await client.get("/openapi.json")).json()["paths"]

    assert before(REQUESTS, method="GET", route="/reports/{report_id}", status="404") is None
    for name in (REQUESTS, LATENCY_COUNT):
        assert after(name, method="GET", route="/reports/{report_id}", status="404") == 2
        assert after(name, method="GET", route="/healthz", status="200") == 1
        assert after(name, method="GET", route="unmatched", status="404") == 1
        assert after(name, method="other", route="/healthz", status="405") == 1
        assert after(name, method="GET", route="/metrics", status="200") == 1  # the first scrape
    # Templates only: a raw path would make a series per report.
    routes = {sample.labels["route"] for sample in after.named(REQUESTS)}
    assert routes == {"/reports/{report_id}", "/healthz", "unmatched", "/metrics"}
    assert "/metrics" not in paths


async def test_reports_queue_and_ingest_in_postgres_mode(
    postgres_url: str, data_files: GeneratedFiles
) -> None:
    await empty_postgres(postgres_url)
    settings = postgres_mode(postgres_url)
    async with serve(settings) as client:
        bodies = await upload_all(client, data_files)
        # No worker yet: the reports wait in the queue, beside the uploads' live evaluation.
        ids = [await trigger(client), await trigger(client)]
        waiting = await scrape(client)

        await run_burst(settings)
        for report_id in ids:
            assert (await wait_until_final(client, report_id))["status"] == "Complete"
        # Sending the polls again stores nothing new.
        response = await client.post(
            "/ingest/polls",
            content=data_files.store_status.read_bytes(),
            headers={"Content-Type": "text/csv"},
        )
        assert response.json()["rows_added"] == 0
        done = await scrape(client)

    assert_ingested(waiting, bodies)
    assert waiting("store_monitor_reports", status="pending") == 2
    assert waiting("store_monitor_reports", status="complete") == 0
    assert waiting("store_monitor_queue_depth") == 3
    assert_durations(waiting, count=0)

    assert done("store_monitor_reports", status="pending") == 0
    assert done("store_monitor_reports", status="complete") == 2
    assert done("store_monitor_queue_depth") == 0
    assert_durations(done, count=2)
    polls = bodies["polls"]["rows_received"]
    assert done("store_monitor_ingest_rows_received_total", kind="polls") == 2 * polls
    assert done("store_monitor_ingest_rows_added_total", kind="polls") == polls


async def test_reports_queue_and_ingest_in_embedded_mode(
    tmp_path: Path, data_files: GeneratedFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)
        return compute_report(*args, **kwargs)

    monkeypatch.setattr("store_monitor.shards.compute_report", slow)
    async with serve(embedded(tmp_path)) as client:
        bodies = await upload_all(client, data_files)
        await queue_emptied(client)  # the uploads' live evaluation done
        report_id = await trigger(client)
        async with asyncio.timeout(10):
            while True:
                if (await client.get(f"/reports/{report_id}")).json()["status"] == "Running":
                    break
                await asyncio.sleep(0.01)
        running = await scrape(client)
        assert (await wait_until_final(client, report_id))["status"] == "Complete"
        done = await scrape(client)

    assert_ingested(running, bodies)
    assert running("store_monitor_reports", status="running") == 1
    assert running("store_monitor_queue_depth") == 1
    assert done("store_monitor_reports", status="running") == 0
    assert done("store_monitor_reports", status="complete") == 1
    assert done("store_monitor_queue_depth") == 0
    assert_durations(done, count=1, at_least=0.3)


class _Unreachable:
    async def depth(self) -> int:
        raise ConnectionError("no route to the queue")

    async def enqueue(
        self, kind: str, key: Key, attempt: int, *, due_at: datetime | None = None
    ) -> None:
        raise NotImplementedError

    async def state(self, kind: str, key: Key, attempt: int) -> JobState:
        raise NotImplementedError

    async def ping(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


async def test_a_reading_that_fails_is_left_out(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    try:
        with caplog.at_level(logging.WARNING, logger="store_monitor"):
            async with create_sessionmaker(engine)() as session:
                await metrics.refresh(session, _Unreachable())
    finally:
        await engine.dispose()
    samples = Samples(metrics.exposition().decode())
    assert samples("store_monitor_queue_depth") is None
    assert samples("store_monitor_reports", status="failed") is not None
    assert "cannot read the queue's depth: no route to the queue" in caplog.text


def test_each_app_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()  # the global registry would refuse the second
    first.observe_request("GET", "/healthz", 200, 0.01)
    assert Samples(first.exposition().decode())(REQUESTS, **_healthz) == 1
    assert Samples(second.exposition().decode())(REQUESTS, **_healthz) is None


_healthz = {"method": "GET", "route": "/healthz", "status": "200"}


async def queue_emptied(client: httpx.AsyncClient) -> None:
    async with asyncio.timeout(30):
        while True:
            if (await scrape(client))("store_monitor_queue_depth") == 0:
                return
            await asyncio.sleep(0.05)
