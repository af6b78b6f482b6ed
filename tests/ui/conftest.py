"""Fixtures of the dashboard tests: data, a complete report, clients with auth off and on."""

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from store_monitor.db.models import KeyScope
from store_monitor.synthetic import GeneratedFiles, generate
from support.service import (
    arq_worker,
    bearer,
    create_key,
    empty_postgres,
    postgres_mode,
    postgres_with_keys,
    serve,
    upload_all,
    wait_until_final,
)

_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


@pytest.fixture(scope="session")
def ui_data(tmp_path_factory: pytest.TempPathFactory) -> GeneratedFiles:
    return generate(tmp_path_factory.mktemp("ui-data"), stores=70, days=8, seed=13)


def csrf_token(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page carries no CSRF token"
    return found[1]


async def trigger_and_wait(client: httpx.AsyncClient) -> str:
    """Start a report from the list page as its script does; its id once complete."""
    home = await client.get("/")
    assert home.status_code == 200, home.text
    started = await client.post(
        "/ui/reports",
        headers={"X-CSRF-Token": csrf_token(home.text), "Accept": "application/json"},
    )
    assert started.status_code == 202, started.text
    report_id: str = started.json()["report_id"]
    return report_id


async def live_caught_up(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> None:
    """Once the live evaluations of the uploads are done: none is left running when the worker
    stops at the test's end."""
    async with asyncio.timeout(60):
        while True:
            view = (await client.get("/live", headers=headers)).json()
            if view["now"] is not None and view["now"] == view["latest_poll_at"]:
                return
            await asyncio.sleep(0.05)


@pytest.fixture
async def open_client(
    postgres_url: str, ui_data: GeneratedFiles
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with authentication off, the data loaded."""
    await empty_postgres(postgres_url)
    settings = postgres_mode(postgres_url)
    async with arq_worker(settings), serve(settings) as client:
        await upload_all(client, ui_data)
        await live_caught_up(client)
        yield client


@pytest.fixture
async def complete(open_client: httpx.AsyncClient) -> str:
    report_id = await trigger_and_wait(open_client)
    metadata = await wait_until_final(open_client, report_id)
    assert metadata["status"] == "Complete"
    return report_id


@pytest.fixture
async def keyed(
    postgres_url: str, ui_data: GeneratedFiles
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], str]]:
    """The app with keys required and a complete report: (client, keys by name, report id).
    Keys: `admin`, `ingest`, `owner` (of the data's first three stores, listed in `owned`;
    `foreign` is a store of the report that is not the owner's)."""
    await empty_postgres(postgres_url)
    settings = postgres_with_keys(postgres_url)
    keys = {
        "admin": await create_key(postgres_url, "admin-key", scope=KeyScope.admin),
        "ingest": await create_key(postgres_url, "ingest-key", scope=KeyScope.ingest),
        "owner": await create_key(postgres_url, "owner-key", owner_id="brand"),
    }
    async with arq_worker(settings), serve(settings) as client:
        admin = bearer(keys["admin"])
        for path, route in (
            (ui_data.store_status, "/ingest/polls"),
            (ui_data.menu_hours, "/ingest/business-hours"),
            (ui_data.timezones, "/ingest/timezones"),
        ):
            response = await client.post(
                route, content=path.read_bytes(), headers={"Content-Type": "text/csv", **admin}
            )
            assert response.status_code == 200, response.text
        stores = sorted(
            {line.split(",")[0] for line in ui_data.store_status.read_text().splitlines()[1:]}
        )
        owners = "owner_id,store_id\n" + "".join(f"brand,{store}\n" for store in stores[:3])
        response = await client.post(
            "/ingest/owners", content=owners.encode(), headers={"Content-Type": "text/csv", **admin}
        )
        assert response.status_code == 200, response.text
        triggered = await client.post("/trigger_report", headers=admin)
        report_id = triggered.json()["report_id"]
        async with asyncio.timeout(60):
            while True:
                state = await client.get(f"/reports/{report_id}", headers=admin)
                if state.json()["status"] in ("Complete", "Failed"):
                    break
                await asyncio.sleep(0.05)
        assert state.json()["status"] == "Complete", state.text
        await live_caught_up(client, admin)
        yield client, keys | {"owned": ",".join(stores[:3]), "foreign": stores[3]}, report_id
