"""Property-based test of the whole API against its own OpenAPI document (schemathesis): for
generated valid and invalid requests, no 5xx, and every response is one the document describes
(status code, content type, headers, body schema). Authentication is required and the requests
carry an admin key; schemathesis checks that leaving it out is refused."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from redis.asyncio import Redis
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from store_monitor import ingest, report_runs
from store_monitor.api.wire import EXAMPLE_REPORT_ID
from store_monitor.db.models import KeyScope, Report
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.sources import read_business_hours, read_polls, read_timezones
from store_monitor.synthetic import generate
from store_monitor.web.app import create_app
from store_monitor.work.lease import Runner
from support.service import (
    REDIS_URL,
    bearer,
    create_key,
    embedded,
    empty_postgres,
    postgres_with_keys,
)

if TYPE_CHECKING:
    from schemathesis.checks import CheckFunction
    from schemathesis.specs.openapi.schemas import OpenApiCase

# The app's own document; the requests go to the app the fixture below builds.
# (schemathesis' lazy `from_fixture` loader does not work with this pytest.)
schema = schemathesis.openapi.from_dict(create_app(embedded(Path("unused"))).openapi())

# Requests valid by the schema that the service rightly refuses, because a JSON schema cannot
# say it: an upload must be a well-formed CSV of its kind (422 invalid_csv), `as_of` must be
# before the clock plus its skew (422), a list's `cursor` one the API gave (422), and a
# schedule's `cron` and `timezone` ones cronsim and the IANA database know (422), and a
# webhook's URL a public https one (422), when it is made or changed. Every other check runs
# on every operation.
_SCHEMA_CANNOT_SAY = {
    "/reports",
    "/webhooks",
    "/webhooks/{webhook_id}",
    "/webhooks/{webhook_id}/deliveries",
    "/ingest/polls",
    "/ingest/business-hours",
    "/ingest/timezones",
    "/ingest/owners",
    "/trigger_report",
    "/schedules",
}

_BODY_OVER_ITS_LIMIT_FIRST = {"/webhooks", "/webhooks/{webhook_id}"}


@pytest.fixture(scope="module")
async def app_and_key(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[FastAPI, str]]:
    """The app on the test run's Postgres database, holding a small data set; `example_report`
    keeps a complete report whose id is the one the document's examples use, so that the CSV
    responses get checked too.

    Its queue is Arq's on Redis with no worker: triggered reports stay pending. With jobs running
    in-process, each test's end (the app's shutdown) would interrupt them mid-write; the jobs are
    not what this test is about.
    """
    await empty_postgres(postgres_url)
    # "testserver": the Host of schemathesis' requests to an ASGI app. Its probes with no key
    # or a made-up one would soon meet the limiter's 429 otherwise.
    settings = postgres_with_keys(
        postgres_url,
        max_upload_bytes=64 * 1024,
        allowed_hosts="testserver",
        auth_failures_per_minute=100_000,
    )
    files = generate(tmp_path_factory.mktemp("data"), stores=5, days=8, seed=1)
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    try:
        sessionmaker = create_sessionmaker(engine)
        async with sessionmaker.begin() as session:
            await ingest.ingest_polls(session, read_polls(files.store_status))
            await ingest.ingest_business_hours(session, read_business_hours(files.menu_hours))
            await ingest.ingest_timezones(session, read_timezones(files.timezones))
    finally:
        await engine.dispose()
    secret = await create_key(postgres_url, "schemathesis", scope=KeyScope.admin)
    yield create_app(settings), secret
    # No worker took the queued jobs: drop the queue, which has the test's own name.
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.delete(settings.queue_name)
    finally:
        await redis.aclose()


@pytest.fixture(autouse=True)
async def example_report(postgres_url: str, app_and_key: tuple[FastAPI, str]) -> None:
    """The complete report the examples name, made again if an example deleted it."""
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    try:
        sessionmaker = create_sessionmaker(engine)
        report_id = UUID(EXAMPLE_REPORT_ID)
        async with sessionmaker.begin() as session:
            if await session.get(Report, report_id) is not None:
                return
            session.add(Report(id=report_id))
        runner = Runner(owner="tests", lease_seconds=30, timeout_seconds=30, max_attempts=1)
        await report_runs.run_report(sessionmaker, report_id, 1, runner)
    finally:
        await engine.dispose()


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    # Each example is a real request through the app and its database.
    suppress_health_check=[HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case: "OpenApiCase", app_and_key: tuple[FastAPI, str]) -> None:
    app, secret = app_and_key
    # The checks' own probes (the request without the key, or with a made-up one) go to the
    # app of the case's schema.
    case.operation.schema.app = app
    excluded: list[CheckFunction] = []
    if case.operation.path in _SCHEMA_CANNOT_SAY:
        excluded.append(positive_data_acceptance)
    if case.operation.query:
        # Query parameters the API does not define are ignored, as HTTP APIs commonly do; a
        # negative case that adds one (`?=true`) would count that as invalid data accepted.
        excluded.append(negative_data_rejection)
    if case.operation.path in _BODY_OVER_ITS_LIMIT_FIRST:
        # A long list in the body passes the 64 KiB body limit before the schema's maxItems:
        # it is refused with 413 (documented), not the 4xx this check expects.
        excluded.append(negative_data_rejection)
    case.call_and_validate(app=app, headers=bearer(secret), excluded_checks=excluded)
