"""The API's contract around the happy path: one JSON error shape for every failure, reports
shown as Running until they are done, probes, and a stable OpenAPI description."""

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
import sqlalchemy as sa

from store_monitor.api.small_body import MAX_BODY_BYTES
from store_monitor.synthetic import GeneratedFiles
from store_monitor.web.app import create_app
from store_monitor.work.queue import InProcessQueue, QueueClosed
from support.service import embedded, empty_postgres, postgres_mode, serve, wait_until_final


@pytest.fixture
async def embedded_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(embedded(tmp_path)) as client:
        yield client


def _error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    details: dict[str, object] = body["error"]["details"]
    return details


@pytest.mark.parametrize(
    ("kwargs", "location"),
    [
        ({"json": {"as_of": "next tuesday"}}, "body.as_of"),
        ({"json": {"as_of": "0001-01-01T00:00:00+01:00"}}, "body.as_of"),
        ({"json": {"as_of": "1970-01-01T00:10:00Z"}}, "body.as_of"),
        ({"json": {"as_of": "1999-12-31T23:59:59Z"}}, "body.as_of"),
        ({"json": {"as_of": "2999-01-01T00:00:00Z"}}, "body.as_of"),
        ({"json": {"as_of": "9999-12-31T23:59:59Z"}}, "body.as_of"),
        ({"json": {"as_of": 1674669600}}, "body.as_of"),
        ({"json": {"as_of": "2023-01-25T18:00:00Z", "store": "1"}}, "body.store"),
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, "body.1"),
        ({"headers": {"Idempotency-Key": "k" * 256}}, "header.Idempotency-Key"),
    ],
    ids=[
        "bad-instant",
        "out-of-range",
        "near-the-epoch",
        "before-2000",
        "after-the-clock",
        "end-of-calendar",
        "a-number",
        "unknown-field",
        "malformed-json",
        "long-key",
    ],
)
async def test_invalid_trigger_requests_are_422(
    embedded_client: httpx.AsyncClient, kwargs: dict[str, object], location: str
) -> None:
    response = await embedded_client.post("/trigger_report", **kwargs)  # type: ignore[arg-type]
    details = _error(response, 422, "invalid_request")
    errors = details["errors"]
    assert isinstance(errors, list)
    assert errors[0]["location"] == location
    assert errors[0]["message"]


async def test_as_of_may_be_up_to_the_clock_plus_the_skew(tmp_path: Path) -> None:
    soon = datetime.now(UTC) + timedelta(hours=2)
    async with serve(embedded(tmp_path, clock_skew_seconds=3 * 3600)) as client:
        accepted = await client.post("/trigger_report", json={"as_of": soon.isoformat()})
        assert accepted.status_code == 202, accepted.text
        oldest = await client.post("/trigger_report", json={"as_of": "2000-01-01T00:00:00Z"})
        assert oldest.status_code == 202, oldest.text
    async with serve(embedded(tmp_path, clock_skew_seconds=3600)) as client:
        refused = await client.post("/trigger_report", json={"as_of": soon.isoformat()})
        errors = _error(refused, 422, "invalid_request")["errors"]
        assert isinstance(errors, list)
        assert errors[0]["location"] == "body.as_of"
        assert "the allowed skew" in errors[0]["message"]


async def test_a_huge_unknown_field_name_is_cut_in_the_error(
    embedded_client: httpx.AsyncClient,
) -> None:
    response = await embedded_client.post("/trigger_report", json={"k" * 60_000: 1})
    details = _error(response, 422, "invalid_request")
    assert len(response.content) < 2_000
    errors = details["errors"]
    assert isinstance(errors, list)
    assert "(60,005 characters)" in errors[0]["location"]


async def test_a_trigger_body_over_the_cap_is_413(embedded_client: httpx.AsyncClient) -> None:
    cap = MAX_BODY_BYTES
    padded = b'{"as_of": "2023-01-25T18:00:00Z", "padding": "' + b"x" * cap
    at_cap, over_cap = padded[: cap - 2] + b'"}', padded[: cap - 1] + b'"}'
    json = {"Content-Type": "application/json"}

    # At the cap, the body is read (and refused for its unknown field); over it, it is not.
    response = await embedded_client.post("/trigger_report", content=at_cap, headers=json)
    _error(response, 422, "invalid_request")
    response = await embedded_client.post("/trigger_report", content=over_cap, headers=json)
    assert _error(response, 413, "payload_too_large") == {"max_body_bytes": cap}

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for start in range(0, len(over_cap), 4096):
            yield over_cap[start : start + 4096]

    response = await embedded_client.post("/trigger_report", content=chunks(), headers=json)
    assert "content-length" not in response.request.headers
    assert _error(response, 413, "payload_too_large") == {"max_body_bytes": cap}


async def test_http_errors_have_the_same_shape(embedded_client: httpx.AsyncClient) -> None:
    _error(await embedded_client.get("/no/such/route"), 404, "not_found")
    _error(await embedded_client.delete("/trigger_report"), 405, "method_not_allowed")
    details = _error(await embedded_client.get("/get_report/not-a-uuid"), 422, "invalid_request")
    assert details["errors"][0]["location"] == "path.report_id"  # type: ignore[index]


async def test_the_paged_lists_refuse_a_cursor_that_is_not_theirs_alike(
    embedded_client: httpx.AsyncClient,
) -> None:
    for path in ("/reports", "/schedules"):
        for cursor in ("not-a-cursor", "bm90LWEtY3Vyc29y", "\x00\xff", "A" * 5000):
            details = _error(
                await embedded_client.get(path, params={"cursor": cursor}), 422, "invalid_request"
            )
            assert details["errors"] == [
                {
                    "location": "query.cursor",
                    "message": f"not a cursor of GET {path}",
                    "type": "value_error",
                }
            ]


async def test_a_report_that_cannot_be_queued_waits_pending(
    embedded_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: InProcessQueue, *args: object, **kwargs: object) -> None:
        raise ConnectionError("queue is down")

    monkeypatch.setattr(InProcessQueue, "enqueue", broken)
    answer = await embedded_client.post("/trigger_report")
    assert answer.status_code == 202
    metadata = (await embedded_client.get(f"/reports/{answer.json()['report_id']}")).json()
    assert (metadata["status"], metadata["error"]) == ("Pending", None)


_DATABASE_ROUTES = [
    "trigger_report",
    "get_report",
    "get_report_metadata",
    "download_report_csv",
    "get_report_summary",
    "get_store_history",
    "ingest_polls",
    "ingest_business_hours",
    "ingest_timezones",
    "ingest_owners",
    "create_schedule",
    "list_schedules",
    "get_live",
]


@pytest.fixture
def unreachable_database() -> str:
    """A Postgres URL at a port nothing listens on: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/store_monitor"


async def test_routes_answer_503_when_the_database_cannot_be_reached(
    unreachable_database: str, data_files: GeneratedFiles
) -> None:
    report = f"/reports/{uuid4()}"
    requests: dict[str, tuple[str, str, dict[str, Any]]] = {
        "trigger_report": ("POST", "/trigger_report", {"json": {}}),
        "get_report": ("GET", f"/get_report/{uuid4()}", {}),
        "get_report_metadata": ("GET", report, {}),
        "download_report_csv": ("GET", f"{report}/csv", {}),
        "get_report_summary": ("GET", f"{report}/summary", {}),
        "get_store_history": ("GET", "/stores/s/history", {}),
        "get_live": ("GET", "/live", {}),
    }
    for operation, route, path in (
        ("ingest_polls", "/ingest/polls", data_files.store_status),
        ("ingest_business_hours", "/ingest/business-hours", data_files.menu_hours),
        ("ingest_timezones", "/ingest/timezones", data_files.timezones),
    ):
        csv = {"content": path.read_bytes(), "headers": {"Content-Type": "text/csv"}}
        requests[operation] = ("POST", route, csv)
    owners = {"content": b"owner_id,store_id\nbrand,1\n", "headers": {"Content-Type": "text/csv"}}
    requests["ingest_owners"] = ("POST", "/ingest/owners", owners)
    requests["create_schedule"] = ("POST", "/schedules", {"json": {"cron": "0 6 * * 1"}})
    requests["list_schedules"] = ("GET", "/schedules", {})
    assert sorted(requests) == sorted(_DATABASE_ROUTES)

    async with serve(postgres_mode(unreachable_database)) as client:
        for method, route, kwargs in requests.values():
            response = await client.request(method, route, **kwargs)
            assert _error(response, 503, "database_unavailable") == {}
        assert _error(await client.get("/readyz"), 503, "not_ready") == {"component": "database"}


async def test_a_database_error_that_is_no_outage_stays_500(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> None:
        raise sa.exc.IntegrityError("INSERT ...", {}, Exception("duplicate key"))

    monkeypatch.setattr("store_monitor.reports.report_state", broken)
    async with serve(embedded(tmp_path), raise_app_exceptions=False) as client:
        response = await client.get(f"/reports/{uuid4()}")
    _error(response, 500, "internal_error")


async def test_pending_shows_as_running_until_a_worker_takes_it(postgres_url: str) -> None:
    # Postgres and a queue, but no worker: the report stays pending.
    await empty_postgres(postgres_url)
    async with serve(postgres_mode(postgres_url)) as client:
        report_id = (await client.post("/trigger_report")).json()["report_id"]

        response = await client.get(f"/get_report/{report_id}")
        assert response.status_code == 200
        assert response.headers["x-report-status"] == "Running"
        assert response.json() == {"report_id": report_id, "status": "Running", "error": None}

        assert (await client.get(f"/reports/{report_id}")).json()["status"] == "Pending"
        details = _error(await client.get(f"/reports/{report_id}/csv"), 409, "report_not_complete")
        assert details["status"] == "Pending"


async def test_failed_report_shows_its_reason(
    embedded_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("engine exploded")

    monkeypatch.setattr("store_monitor.shards.compute_report", broken)
    report_id = (await embedded_client.post("/trigger_report")).json()["report_id"]
    assert (await wait_until_final(embedded_client, report_id))["status"] == "Failed"

    response = await embedded_client.get(f"/get_report/{report_id}")
    assert response.status_code == 200
    assert response.headers["x-report-status"] == "Failed"
    assert response.json() == {
        "report_id": report_id,
        "status": "Failed",
        "error": "the report could not be computed (RuntimeError, attempt 1); "
        "the runner's log has the details under the report's request id",
    }


async def test_probes(embedded_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (await embedded_client.get("/healthz")).json() == {"status": "ok"}
    assert (await embedded_client.get("/readyz")).json() == {
        "status": "ready",
        "database": "ok",
        "queue": "ok",
    }

    async def down(self: InProcessQueue) -> None:
        raise QueueClosed("gone")

    monkeypatch.setattr(InProcessQueue, "ping", down)
    details = _error(await embedded_client.get("/readyz"), 503, "not_ready")
    assert details == {"component": "queue"}


def test_openapi_operations_are_stable() -> None:
    schema = create_app(embedded(Path("unused"))).openapi()
    operations = {
        operation["operationId"]: (path, method)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }
    assert operations == {
        "trigger_report": ("/trigger_report", "post"),
        "get_report": ("/get_report/{report_id}", "get"),
        "get_report_metadata": ("/reports/{report_id}", "get"),
        "download_report_csv": ("/reports/{report_id}/csv", "get"),
        "download_report_incidents_csv": ("/reports/{report_id}/incidents", "get"),
        "download_report_daily_csv": ("/reports/{report_id}/daily", "get"),
        "get_report_store": ("/reports/{report_id}/stores/{store_id}", "get"),
        "get_report_summary": ("/reports/{report_id}/summary", "get"),
        "get_store_history": ("/stores/{store_id}/history", "get"),
        "list_reports": ("/reports", "get"),
        "delete_report": ("/reports/{report_id}", "delete"),
        "ingest_polls": ("/ingest/polls", "post"),
        "ingest_business_hours": ("/ingest/business-hours", "post"),
        "ingest_timezones": ("/ingest/timezones", "post"),
        "ingest_owners": ("/ingest/owners", "post"),
        "get_live": ("/live", "get"),
        "healthz": ("/healthz", "get"),
        "readyz": ("/readyz", "get"),
        "create_schedule": ("/schedules", "post"),
        "list_schedules": ("/schedules", "get"),
        "get_schedule": ("/schedules/{schedule_id}", "get"),
        "delete_schedule": ("/schedules/{schedule_id}", "delete"),
        "create_webhook": ("/webhooks", "post"),
        "list_webhooks": ("/webhooks", "get"),
        "get_webhook": ("/webhooks/{webhook_id}", "get"),
        "update_webhook": ("/webhooks/{webhook_id}", "patch"),
        "delete_webhook": ("/webhooks/{webhook_id}", "delete"),
        "rotate_webhook_secret": ("/webhooks/{webhook_id}/rotate-secret", "post"),
        "enable_webhook": ("/webhooks/{webhook_id}/enable", "post"),
        "test_webhook": ("/webhooks/{webhook_id}/test", "post"),
        "list_webhook_deliveries": ("/webhooks/{webhook_id}/deliveries", "get"),
    }
    error = {"$ref": "#/components/schemas/ErrorResponse"}
    trigger = schema["paths"]["/trigger_report"]["post"]["responses"]
    assert trigger["422"]["content"]["application/json"]["schema"] == error
    assert trigger["413"]["content"]["application/json"]["schema"] == error
    polls = schema["paths"]["/ingest/polls"]["post"]
    assert set(polls["requestBody"]["content"]) == {"text/csv", "multipart/form-data"}
    assert {"413", "415", "422"} <= set(polls["responses"])
    for operation in _DATABASE_ROUTES:
        path, method = operations[operation]
        unavailable = schema["paths"][path][method]["responses"]["503"]
        assert "`database_unavailable`" in unavailable["description"]
        assert unavailable["content"]["application/json"]["schema"] == error
    status = schema["components"]["schemas"]["WireReportStatus"]
    assert status["enum"] == ["Pending", "Running", "Complete", "Failed"]
