"""The API's answers to keys, on Postgres with authentication required: 401 for no key or an
unknown, revoked or expired one, 403 without the scope, each scope's routes, the open probes,
the failure limiter's 429, and log lines that name keys but never hold secrets."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from store_monitor import access
from store_monitor.db.models import ApiKey, KeyScope
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.logs import RequestIdFilter
from store_monitor.schedules.cron import parse_schedule
from store_monitor.schedules.rows import create_schedule
from store_monitor.settings import Settings
from store_monitor.synthetic import GeneratedFiles
from store_monitor.web.app import create_app
from support.service import SECRET_KEY, bearer, create_key, serve, upload_all

from .conftest import Keys

CSV = {"Content-Type": "text/csv"}
OWNERS_CSV = b"owner_id,store_id\nbrand,1\n"


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()["error"]
    assert body["code"] == code, body
    details: dict[str, Any] = body["details"]
    return details


def _unauthorized(response: httpx.Response, code: str) -> None:
    _error(response, 401, code)
    assert response.headers["www-authenticate"].startswith('Bearer realm="store-monitor"')


async def test_no_key_is_401_with_a_bearer_challenge(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("POST", "/trigger_report"),
        ("GET", "/reports/0b5e6f3c-8d51-4c2e-9a7b-3f1d2e4c5a6b"),
        ("POST", "/ingest/polls"),
        ("POST", "/ingest/owners"),
        ("GET", "/metrics"),
    ]:
        _unauthorized(await client.request(method, path), "missing_key")
    # Not a bearer credential at all: the same.
    basic = await client.post("/trigger_report", headers={"Authorization": "Basic dXNlcjpwdw=="})
    _unauthorized(basic, "missing_key")


async def test_unknown_and_malformed_keys_are_401(client: httpx.AsyncClient, keys: Keys) -> None:
    forged = "sm_" + "A" * 43
    _unauthorized(await client.post("/trigger_report", headers=bearer(forged)), "invalid_key")
    _unauthorized(await client.post("/trigger_report", headers=bearer("not-a-key")), "invalid_key")
    # A real key with one character changed.
    changed = keys.admin[:-1] + ("A" if keys.admin[-1] != "A" else "B")
    _unauthorized(await client.post("/trigger_report", headers=bearer(changed)), "invalid_key")


async def test_a_revoked_key_is_401_from_then_on(
    client: httpx.AsyncClient, keys: Keys, postgres_url: str
) -> None:
    assert (await client.get("/metrics", headers=bearer(keys.metrics))).status_code == 200
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    try:
        async with create_sessionmaker(engine).begin() as session:
            await access.revoke_key(session, "metrics-key", now=datetime.now(UTC))
    finally:
        await engine.dispose()
    response = await client.get("/metrics", headers=bearer(keys.metrics))
    _unauthorized(response, "invalid_key")
    assert response.json()["error"]["message"] == "the API key was revoked"


async def test_an_expired_key_is_401(
    client: httpx.AsyncClient, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    secret = await create_key(postgres_url, "short-lived", scope=KeyScope.reports, expires_at=soon)
    assert (await client.post("/trigger_report", headers=bearer(secret))).status_code == 202

    real_verify = access.verify

    async def two_hours_later(session: Any, **options: Any) -> access.Principal:
        return await real_verify(session, **{**options, "now": soon + timedelta(hours=1)})

    monkeypatch.setattr(access, "verify", two_hours_later)
    response = await client.post("/trigger_report", headers=bearer(secret))
    _unauthorized(response, "invalid_key")
    assert response.json()["error"]["message"] == "the API key has expired"


async def test_each_scope_opens_its_routes_only(
    client: httpx.AsyncClient, keys: Keys, data_files: GeneratedFiles
) -> None:
    polls = {"content": data_files.store_status.read_bytes(), "headers": CSV}
    owners = {"content": OWNERS_CSV, "headers": CSV}

    # ingest: the uploads, but not the owners, nor reports, nor metrics.
    ingest = {"Authorization": f"Bearer {keys.ingest}"}
    assert (await client.post("/ingest/polls", **_with(polls, ingest))).status_code == 200
    details = _error(
        await client.post("/ingest/owners", **_with(owners, ingest)), 403, "insufficient_scope"
    )
    assert details == {"needed": ["admin"]}
    _error(await client.post("/trigger_report", headers=ingest), 403, "insufficient_scope")
    _error(await client.get("/metrics", headers=ingest), 403, "insufficient_scope")

    # reports: trigger, read, download; no uploads.
    reports = bearer(keys.reports)
    triggered = await client.post("/trigger_report", headers=reports)
    assert triggered.status_code == 202
    report = f"/reports/{triggered.json()['report_id']}"
    assert (await client.get(report, headers=reports)).status_code == 200
    assert (await client.get(report.replace("reports", "get_report"), headers=reports)).is_success
    denied = await client.post("/ingest/polls", **_with(polls, reports))
    assert _error(denied, 403, "insufficient_scope") == {"needed": ["admin", "ingest"]}
    assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]

    # metrics: the scrape only.
    metrics = bearer(keys.metrics)
    assert (await client.get("/metrics", headers=metrics)).status_code == 200
    _error(await client.post("/trigger_report", headers=metrics), 403, "insufficient_scope")

    # admin: everything, the owners source included.
    admin = bearer(keys.admin)
    assert (await client.post("/ingest/owners", **_with(owners, admin))).status_code == 200
    assert (await client.post("/ingest/polls", **_with(polls, admin))).status_code == 200
    assert (await client.post("/trigger_report", headers=admin)).status_code == 202
    assert (await client.get("/metrics", headers=admin)).status_code == 200


def _with(request: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    return {**request, "headers": {**request.get("headers", {}), **headers}}


async def test_probes_and_docs_stay_open(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200
    assert (await client.get("/openapi.json")).status_code == 200
    assert (await client.get("/docs")).status_code == 200


async def test_failed_authentications_are_limited_per_address(settings: Settings) -> None:
    limited = settings.model_copy(update={"auth_failures_per_minute": 3})
    async with serve(limited) as client:
        answers = [
            (await client.post("/trigger_report", headers=bearer("sm_wrong"))).status_code
            for _ in range(3)
        ]
        assert answers == [401, 401, 401]
        refused = await client.post("/trigger_report", headers=bearer("sm_wrong"))
        details = _error(refused, 429, "too_many_failures")
        # 3 failures a minute: one more try in about 20 s.
        assert 1 <= int(refused.headers["retry-after"]) <= 20
        assert details == {"retry_after_seconds": int(refused.headers["retry-after"])}
        # The probes are not behind the limiter.
        assert (await client.get("/healthz")).status_code == 200


async def test_failures_are_logged_with_request_id_and_key_never_the_secret(
    client: httpx.AsyncClient, keys: Keys, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    try:
        async with create_sessionmaker(engine).begin() as session:
            await access.revoke_key(session, "ingest-key", now=datetime.now(UTC))
    finally:
        await engine.dispose()
    forged = "sm_" + "Z" * 43
    # Stamped with the request id as the service's log handler does.
    stamp = RequestIdFilter()
    caplog.handler.addFilter(stamp)
    try:
        with caplog.at_level(logging.WARNING, logger="store_monitor.web.auth"):
            for path, secret, request_id in [
                ("/ingest/polls", keys.ingest, "r-1"),
                ("/trigger_report", forged, "r-2"),
                ("/trigger_report", keys.metrics, "r-3"),
            ]:
                await client.post(path, headers={**bearer(secret), "X-Request-ID": request_id})
    finally:
        caplog.handler.removeFilter(stamp)
    fields = [
        (vars(record)["request_id"], vars(record)["key_name"], vars(record)["key_prefix"])
        for record in caplog.records
    ]
    assert fields == [
        ("r-1", "ingest-key", keys.ingest[:11]),
        ("r-2", None, forged[:11]),
        ("r-3", "metrics-key", keys.metrics[:11]),
    ]
    assert "revoked" in caplog.records[0].getMessage()
    logged = "\n".join(f"{record.getMessage()} {vars(record)}" for record in caplog.records)
    for secret in (keys.ingest, forged, keys.metrics):
        assert secret not in logged


async def test_last_use_is_written_at_most_once_a_minute(keys: Keys, postgres_url: str) -> None:
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    sessionmaker = create_sessionmaker(engine)
    start = datetime(2027, 1, 1, tzinfo=UTC)

    async def use_at(now: datetime) -> datetime | None:
        async with sessionmaker.begin() as session:
            await access.verify(
                session, server_key=SECRET_KEY.encode(), secret=keys.reports, now=now
            )
        async with sessionmaker() as session:
            return await session.scalar(
                sa.select(ApiKey.last_used_at).where(ApiKey.name == "reports-key")
            )

    try:
        assert await use_at(start) == start
        assert await use_at(start + timedelta(seconds=59)) == start
        assert await use_at(start + timedelta(seconds=60)) == start + timedelta(seconds=60)
    finally:
        await engine.dispose()


async def test_the_uploads_and_reports_work_with_keys(
    client: httpx.AsyncClient, keys: Keys, data_files: GeneratedFiles
) -> None:
    client.headers.update(bearer(keys.admin))
    bodies = await upload_all(client, data_files)
    assert bodies["polls"]["rows_added"] > 0


def test_openapi_declares_the_bearer_scheme_on_every_protected_operation(
    settings: Settings,
) -> None:
    document = create_app(settings).openapi()
    assert document["components"]["securitySchemes"] == {
        "ApiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key, `sm_...`, made by `store-monitor keys create`.",
        }
    }
    open_operations = {"healthz", "readyz"}
    for methods in document["paths"].values():
        for operation in methods.values():
            if operation["operationId"] in open_operations:
                assert "security" not in operation
                continue
            assert operation["security"] == [{"ApiKey": []}], operation["operationId"]
            assert {"401", "403", "429"} <= set(operation["responses"])


async def test_noting_a_keys_use_holds_up_nothing_that_refers_to_the_key(
    keys: Keys, postgres_url: str
) -> None:
    """A request that notes its key's use holds the key's row until it ends; a schedule (or a
    dashboard session) made meanwhile refers to that row and must not wait for it: under the
    schedule quota's lock, such a wait closed a cycle (a deadlock)."""
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    sessionmaker = create_sessionmaker(engine)
    schedule = parse_schedule("0 6 * * *", "UTC", min_interval=timedelta(hours=1))
    try:
        async with sessionmaker.begin() as noting:
            await access.verify(
                noting, server_key=SECRET_KEY.encode(), secret=keys.reports, now=datetime.now(UTC)
            )
            async with sessionmaker.begin() as other, asyncio.timeout(10):
                made = await create_schedule(other, schedule, key_name="reports-key", max_per_key=5)
        assert made.created_by is not None
    finally:
        await engine.dispose()
