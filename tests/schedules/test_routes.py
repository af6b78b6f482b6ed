"""The schedule routes: create (201, Location, next fire time in UTC and in the zone), list by
pages, read, delete; the 4xx of bad input, naming the bad field; and who may use them."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa

from store_monitor.db.models import ApiKey, KeyScope
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.schedules.cron import next_fire_after, parse_schedule
from support.service import (
    bearer,
    create_key,
    empty_postgres,
    postgres_mode,
    postgres_with_keys,
    serve,
)

NEW_YORK = "America/New_York"


@pytest.fixture
async def client(postgres_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Authentication off, as in the embedded mode: no key, every route open."""
    await empty_postgres(postgres_url)
    async with serve(postgres_mode(postgres_url)) as made:
        yield made


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code, body
    details: dict[str, Any] = body["details"]
    return details


async def test_a_created_schedule_says_when_it_fires_next_in_utc_and_in_its_zone(
    client: httpx.AsyncClient,
) -> None:
    before = datetime.now(UTC)
    created = await client.post("/schedules", json={"cron": "0  6 * * 1", "timezone": NEW_YORK})

    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"] == f"/schedules/{body['schedule_id']}"
    assert (body["cron"], body["timezone"], body["created_by"]) == ("0 6 * * 1", NEW_YORK, None)
    assert (body["last_fired_at"], body["last_report_id"]) == (None, None)
    created_at = datetime.fromisoformat(body["created_at"])
    assert before - timedelta(seconds=5) < created_at < datetime.now(UTC) + timedelta(seconds=5)
    next_fire = datetime.fromisoformat(body["next_fire_at"])
    assert next_fire == next_fire_after(
        parse_schedule("0 6 * * 1", NEW_YORK, min_interval=timedelta(hours=1)), created_at
    )
    local = datetime.fromisoformat(body["next_fire_local"])
    assert local == next_fire
    assert (local.weekday(), local.hour, local.minute) == (0, 6, 0)
    assert local.utcoffset() == next_fire.astimezone(ZoneInfo(NEW_YORK)).utcoffset()

    fetched = await client.get(f"/schedules/{body['schedule_id']}")
    assert fetched.status_code == 200
    assert fetched.json() == body


async def test_the_zone_defaults_to_utc(client: httpx.AsyncClient) -> None:
    created = await client.post("/schedules", json={"cron": "15 * * * *"})

    assert created.status_code == 201, created.text
    assert created.json()["timezone"] == "UTC"
    assert created.json()["next_fire_local"].endswith("Z")


async def test_schedules_are_listed_newest_first_by_pages(client: httpx.AsyncClient) -> None:
    made = [
        (await client.post("/schedules", json={"cron": f"{minute} * * * *"})).json()["schedule_id"]
        for minute in range(5)
    ]

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await client.get("/schedules", params=params)
        assert page.status_code == 200, page.text
        seen += [schedule["schedule_id"] for schedule in page.json()["schedules"]]
        pages += 1
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break

    assert seen == made[::-1]
    assert pages == 3


async def test_a_deleted_schedule_is_gone(client: httpx.AsyncClient) -> None:
    schedule_id = (await client.post("/schedules", json={"cron": "0 6 * * *"})).json()[
        "schedule_id"
    ]

    deleted = await client.delete(f"/schedules/{schedule_id}")

    assert deleted.status_code == 204
    assert deleted.content == b""
    for response in (
        await client.get(f"/schedules/{schedule_id}"),
        await client.delete(f"/schedules/{schedule_id}"),
    ):
        assert _error(response, 404, "schedule_not_found") == {"schedule_id": schedule_id}
    assert (await client.get("/schedules")).json()["schedules"] == []


@pytest.mark.parametrize(
    ("body", "location", "message"),
    [
        ({"cron": "0 6 * *"}, "body.cron", "expected 5 fields"),
        ({"cron": "0 25 * * *"}, "body.cron", "Bad hour"),
        ({"cron": "0 6 * * funday", "timezone": NEW_YORK}, "body.cron", "Bad day-of-week"),
        ({"cron": "0 6 * * 1", "timezone": "Mars/Olympus_Mons"}, "body.timezone", "IANA"),
        ({"cron": "0 6 * * 1", "timezone": ""}, "body.timezone", "IANA"),
        ({"cron": "0 6 * * 1", "timezone": "x" * 65}, "body.timezone", "at most 64"),
        ({"cron": "0 6 * * 1 " * 40}, "body.cron", "at most 200"),
        ({"timezone": "UTC"}, "body.cron", "required"),
        ({"cron": 6}, "body.cron", "string"),
        ({"cron": "0 6 * * 1", "as_of": "2026-01-01"}, "body.as_of", "not permitted"),
    ],
)
async def test_a_bad_schedule_is_a_422_naming_its_field(
    client: httpx.AsyncClient, body: dict[str, Any], location: str, message: str
) -> None:
    details = _error(await client.post("/schedules", json=body), 422, "invalid_request")

    [problem] = [error for error in details["errors"] if error["location"] == location]
    assert message.lower() in problem["message"].lower(), problem
    assert (await client.get("/schedules")).json()["schedules"] == []


async def test_a_schedule_firing_more_often_than_allowed_is_a_422(
    client: httpx.AsyncClient,
) -> None:
    details = _error(
        await client.post("/schedules", json={"cron": "*/10 * * * *"}), 422, "invalid_request"
    )

    assert details["errors"] == [
        {
            "location": "body.cron",
            "message": "'*/10 * * * *' fires as little as 10 minutes apart; schedules may fire "
            "at most once every 60 minutes",
            "type": "value_error",
        }
    ]


async def test_a_key_may_have_so_many_schedules(postgres_url: str) -> None:
    await empty_postgres(postgres_url)
    settings = postgres_with_keys(postgres_url, schedule_max_per_key=2)
    first = bearer(await create_key(postgres_url, "first", scope=KeyScope.reports))
    second = bearer(await create_key(postgres_url, "second", scope=KeyScope.admin))
    async with serve(settings) as client:
        for minute in (0, 1):
            made = await client.post(
                "/schedules", json={"cron": f"{minute} 6 * * *"}, headers=first
            )
            assert made.status_code == 201, made.text
        refused = await client.post("/schedules", json={"cron": "2 6 * * *"}, headers=first)
        others = await client.post("/schedules", json={"cron": "3 6 * * *"}, headers=second)
        listed = (await client.get("/schedules", headers=first)).json()["schedules"]

        assert _error(refused, 409, "too_many_schedules") == {"limit": 2}
        assert "this key has 2 schedules already" in refused.json()["error"]["message"]
        assert others.status_code == 201, others.text
        assert sorted(schedule["cron"] for schedule in listed) == [
            "0 6 * * *",
            "1 6 * * *",
            "3 6 * * *",
        ]
        deleted = await client.delete(f"/schedules/{listed[-1]['schedule_id']}", headers=first)
        assert deleted.status_code == 204
        again = await client.post("/schedules", json={"cron": "2 6 * * *"}, headers=first)
        assert again.status_code == 201, again.text


async def test_schedules_made_at_once_by_one_key_stop_at_its_limit(postgres_url: str) -> None:
    await empty_postgres(postgres_url)
    settings = postgres_with_keys(postgres_url, schedule_max_per_key=2)
    key = bearer(await create_key(postgres_url, "eager", scope=KeyScope.reports))
    async with serve(settings) as client:
        made = await asyncio.gather(
            *(
                client.post("/schedules", json={"cron": f"{minute} 6 * * *"}, headers=key)
                for minute in range(8)
            )
        )

    assert sorted(response.status_code for response in made) == [201] * 2 + [409] * 6


async def test_malformed_requests_are_4xx_not_500(client: httpx.AsyncClient) -> None:
    not_json = await client.post(
        "/schedules", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code in (400, 422), not_json.text
    _error(await client.get("/schedules/not-a-uuid"), 422, "invalid_request")
    _error(await client.delete("/schedules/not-a-uuid"), 422, "invalid_request")
    _error(await client.get("/schedules", params={"limit": 0}), 422, "invalid_request")
    _error(await client.get("/schedules", params={"limit": 201}), 422, "invalid_request")
    details = _error(
        await client.get("/schedules", params={"cursor": "bm90LWEtY3Vyc29y"}),
        422,
        "invalid_request",
    )
    assert details["errors"][0]["location"] == "query.cursor"
    big = await client.post(
        "/schedules", content=b" " * (65 * 1024), headers={"Content-Type": "application/json"}
    )
    _error(big, 413, "payload_too_large")


async def test_reports_and_admin_keys_manage_schedules_other_keys_may_not(
    postgres_url: str,
) -> None:
    await empty_postgres(postgres_url)
    keys = {
        "reports": await create_key(postgres_url, "reports-key", scope=KeyScope.reports),
        "admin": await create_key(postgres_url, "admin-key", scope=KeyScope.admin),
        "ingest": await create_key(postgres_url, "ingest-key", scope=KeyScope.ingest),
        "metrics": await create_key(postgres_url, "metrics-key", scope=KeyScope.metrics),
        "owner": await create_key(postgres_url, "owner-key", owner_id="brand"),
    }
    async with serve(postgres_with_keys(postgres_url)) as client:
        created = await client.post(
            "/schedules", json={"cron": "0 6 * * *"}, headers=bearer(keys["reports"])
        )
        assert created.status_code == 201, created.text
        schedule_id = created.json()["schedule_id"]
        for name in ("reports", "admin"):
            listed = await client.get("/schedules", headers=bearer(keys[name]))
            assert [s["schedule_id"] for s in listed.json()["schedules"]] == [schedule_id]

        for name in ("ingest", "metrics", "owner"):
            for method, path in [
                ("POST", "/schedules"),
                ("GET", "/schedules"),
                ("GET", f"/schedules/{schedule_id}"),
                ("DELETE", f"/schedules/{schedule_id}"),
            ]:
                response = await client.request(
                    method, path, json={"cron": "0 6 * * *"}, headers=bearer(keys[name])
                )
                details = _error(response, 403, "insufficient_scope")
                assert details["needed"] == ["admin", "reports"]
        missing = await client.get("/schedules")
        _error(missing, 401, "missing_key")

        deleted = await client.delete(f"/schedules/{schedule_id}", headers=bearer(keys["admin"]))
        assert deleted.status_code == 204

    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    try:
        async with create_sessionmaker(engine)() as session:
            key_id = await session.scalar(sa.select(ApiKey.id).where(ApiKey.name == "reports-key"))
    finally:
        await engine.dispose()
    assert UUID(created.json()["created_by"]) == key_id
