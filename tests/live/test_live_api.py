"""`GET /live` on Postgres with keys required: polls uploaded through the API are evaluated by a
real Arq worker after the upload commits; owners see their own stores; bad parameters are 4xx."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from store_monitor.db.models import KeyScope
from store_monitor.settings import Settings
from support.service import (
    arq_worker,
    bearer,
    create_key,
    empty_postgres,
    postgres_with_keys,
    serve,
)

CSV = {"Content-Type": "text/csv"}
# Open 24x7 (no hours): s1 down since 10:30, s2 since 11:30, s3 up; N is 12:00.
POLLS = """store_id,status,timestamp_utc
s1,active,2023-01-20 10:00:00.000000 UTC
s1,inactive,2023-01-20 11:00:00.000000 UTC
s1,inactive,2023-01-20 12:00:00.000000 UTC
s2,active,2023-01-20 11:00:00.000000 UTC
s2,inactive,2023-01-20 12:00:00.000000 UTC
s3,active,2023-01-20 12:00:00.000000 UTC
"""


@pytest.fixture
async def settings(postgres_url: str) -> Settings:
    await empty_postgres(postgres_url)
    return postgres_with_keys(postgres_url)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings) as client:
        yield client


async def _caught_up(client: httpx.AsyncClient, key: dict[str, str]) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            response = await client.get("/live", headers=key)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if body["now"] is not None and body["now"] == body["latest_poll_at"]:
                return body
            await asyncio.sleep(0.05)


async def test_live_lists_the_stores_down_now_narrowed_to_owners(
    client: httpx.AsyncClient, settings: Settings, postgres_url: str
) -> None:
    admin = bearer(await create_key(postgres_url, "admin", scope=KeyScope.admin))
    reader = bearer(await create_key(postgres_url, "reader", scope=KeyScope.reports))
    owner = bearer(await create_key(postgres_url, "brand", owner_id="brand"))
    loader = bearer(await create_key(postgres_url, "loader", scope=KeyScope.ingest))
    before = (await client.get("/live", headers=reader)).json()
    assert (before["now"], before["stores"]) == (None, [])

    owners = b"owner_id,store_id\nbrand,s2\n"
    assert (
        await client.post("/ingest/owners", content=owners, headers={**CSV, **admin})
    ).status_code == 200
    async with arq_worker(settings):
        uploaded = await client.post(
            "/ingest/polls", content=POLLS.encode(), headers={**CSV, **loader}
        )
        assert uploaded.status_code == 200, uploaded.text
        everything = await _caught_up(client, reader)

    assert everything["now"] == "2023-01-20T12:00:00Z"
    assert everything["total"] == 2
    assert [(s["store_id"], s["since"], s["minutes"]) for s in everything["stores"]] == [
        ("s1", "2023-01-20T10:30:00Z", 90.0),
        ("s2", "2023-01-20T11:30:00Z", 30.0),
    ]
    mine = (await client.get("/live", headers=owner)).json()
    assert ([s["store_id"] for s in mine["stores"]], mine["total"]) == (["s2"], 1)
    # Another owner's store is not told apart from a store that is up.
    assert (await client.get("/live?store_id=s1", headers=owner)).json()["stores"] == []
    one = (await client.get("/live?store_id=s1", headers=reader)).json()
    assert [s["store_id"] for s in one["stores"]] == ["s1"]
    second_page = (await client.get("/live?offset=1&limit=1", headers=reader)).json()
    assert ([s["store_id"] for s in second_page["stores"]], second_page["total"]) == (["s2"], 2)


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("?limit=0", 422),
        ("?limit=501", 422),
        ("?offset=-1", 422),
        ("?offset=x", 422),
        ("?store_id=", 422),
        ("?store_id=%3Dcmd", 422),
    ],
)
async def test_bad_parameters_are_4xx(
    client: httpx.AsyncClient, postgres_url: str, query: str, status: int
) -> None:
    reader = bearer(await create_key(postgres_url, "reader", scope=KeyScope.reports))
    response = await client.get("/live" + query, headers=reader)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == "invalid_request"


async def test_live_needs_a_key_that_reads_reports(
    client: httpx.AsyncClient, postgres_url: str
) -> None:
    assert (await client.get("/live")).status_code == 401
    for scope in (KeyScope.ingest, KeyScope.metrics):
        key = bearer(await create_key(postgres_url, f"{scope.value}-key", scope=scope))
        assert (await client.get("/live", headers=key)).status_code == 403
