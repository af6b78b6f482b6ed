"""Every store id the rule accepts is reachable on every route and page that names a store, with
its links percent-encoded; the ids no link could carry (`.`, `..`) are refused at ingest."""

import csv
import html
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.convertors import PathConvertor

from store_monitor.web.app import create_app
from support.service import (
    arq_worker,
    embedded,
    empty_postgres,
    postgres_mode,
    serve,
    wait_until_final,
)

from .test_head import app_routes

HOSTILE_IDS = (
    "a/b",
    "a/",
    "/x",
    "50%",
    "what?",
    "#1",
    "two words",
    "Café ☕ 東京",
    "<script>",
    "9" * 255,
    "/a b?c#d%2F,é&x=1/",
)
FILLERS = tuple(f"s{number:03}" for number in range(120))
"""Enough other stores for three pages of 50, the hostile ones spread over them."""
_STORE_LINK = re.compile(r'<th scope="row"><a href="(/ui/reports/[^"]+/stores/[^"]+)">')
_DOWNLOAD_LINK = re.compile(r'href="(/ui/reports/[^"]+/files/[a-z]+\.csv\?[^"]+)"')


def polls_csv(store_ids: tuple[str, ...]) -> bytes:
    body = io.StringIO()
    writer = csv.writer(body, lineterminator="\n")
    writer.writerow(["store_id", "timestamp_utc", "status"])
    for index, store_id in enumerate(store_ids):
        # Stores down at different hours: the default sort (downtime) mixes both kinds of ids.
        writer.writerow([store_id, f"2026-12-01 {index % 20:02}:00:00.000000 UTC", "inactive"])
        writer.writerow([store_id, "2026-12-01 21:00:00.000000 UTC", "active"])
    return body.getvalue().encode()


def csv_store_ids(text: str) -> set[str]:
    return {row["store_id"] for row in csv.DictReader(io.StringIO(text))}


@pytest.fixture
async def client_and_report(postgres_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    await empty_postgres(postgres_url)
    settings = postgres_mode(postgres_url)
    async with arq_worker(settings), serve(settings) as client:
        loaded = await client.post(
            "/ingest/polls",
            content=polls_csv(HOSTILE_IDS + FILLERS),
            headers={"Content-Type": "text/csv"},
        )
        assert loaded.status_code == 200, loaded.text
        report_id = (await client.post("/trigger_report")).json()["report_id"]
        assert (await wait_until_final(client, report_id))["status"] == "Complete"
        yield client, report_id


async def test_every_accepted_id_opens_on_every_api_route(
    client_and_report: tuple[httpx.AsyncClient, str],
) -> None:
    client, report_id = client_and_report
    for store_id in HOSTILE_IDS:
        store = await client.get(f"/reports/{report_id}/stores/{quote(store_id, safe='')}")
        assert store.status_code == 200, (store_id, store.text)
        assert store.json()["store_id"] == store_id
        for kind in ("incidents", "daily"):
            rows = await client.get(f"/reports/{report_id}/{kind}", params={"store_id": store_id})
            assert rows.status_code == 200, (store_id, kind, rows.text)
            assert csv_store_ids(rows.text) == {store_id}, (store_id, kind)
    # A client that leaves `/` unencoded reaches the store too.
    assert (await client.get(f"/reports/{report_id}/stores/a/b")).json()["store_id"] == "a/b"
    missing = await client.get(f"/reports/{report_id}/stores/a%2Fc")
    assert missing.status_code == 404
    assert missing.json()["error"]["details"]["store_id"] == "a/c"


async def test_every_accepted_id_is_listed_linked_and_opened_on_the_pages(
    client_and_report: tuple[httpx.AsyncClient, str],
) -> None:
    client, report_id = client_and_report
    linked: dict[str, str] = {}
    for number in (1, 2, 3):  # the default sort, by downtime
        page = await client.get(f"/ui/reports/{report_id}", params={"page": number})
        assert page.status_code == 200, page.text
        for link in _STORE_LINK.findall(page.text):
            path = html.unescape(link)
            linked[unquote(path.rsplit("/stores/", 1)[1])] = path
    assert set(linked) == set(HOSTILE_IDS + FILLERS)
    for store_id in HOSTILE_IDS:
        path = linked[store_id]
        # One segment: every `/`, `?`, `#` and `%` of the id is encoded.
        segment = path.rsplit("/stores/", 1)[1]
        assert not set("/?#") & set(segment), segment
        assert unquote(segment) == store_id
        store = await client.get(path)
        assert store.status_code == 200, (store_id, store.text)
        assert f"<h1>Store {html.escape(store_id)}</h1>" in store.text
        downloads = [html.unescape(link) for link in _DOWNLOAD_LINK.findall(store.text)]
        assert len(downloads) == 2, store_id
        for download in downloads:
            rows = await client.get(download)
            assert rows.status_code == 200, (store_id, download)
            assert csv_store_ids(rows.text) == {store_id}, (store_id, download)
    for text, expected in (("/", {"a/b", "a/", "/x", "/a b?c#d%2F,é&x=1/"}), ("%", {"50%"})):
        for sort in ("store_id", "downtime_last_week"):
            found = await client.get(f"/ui/reports/{report_id}", params={"q": text, "sort": sort})
            assert found.status_code == 200, (text, found.text)
            shown = {
                unquote(html.unescape(link)).rsplit("/stores/", 1)[1]
                for link in _STORE_LINK.findall(found.text)
            }
            assert shown >= expected, text
    scripted = await client.get(f"/ui/reports/{report_id}", params={"q": "script"})
    assert scripted.status_code == 200
    assert "&lt;script&gt;" in scripted.text
    assert "<script>" not in scripted.text


@pytest.mark.parametrize("store_id", [".", ".."])
async def test_ids_no_link_can_carry_are_refused_at_ingest(
    postgres_url: str, store_id: str
) -> None:
    await empty_postgres(postgres_url)
    async with serve(postgres_mode(postgres_url)) as client:
        refused = await client.post(
            "/ingest/polls", content=polls_csv((store_id,)), headers={"Content-Type": "text/csv"}
        )
    assert refused.status_code == 422
    details = refused.json()["error"]["details"]
    assert (details["line"], details["column"], details["value"]) == (2, "store_id", store_id)
    assert "dot segment" in details["reason"]


def test_every_route_naming_a_store_in_its_path_takes_a_slash(tmp_path: Path) -> None:
    """The server decodes `%2F` before routing: a store id in a path needs the `path` converter,
    on the routes of today and those added later; the OpenAPI path stays `{store_id}`."""
    app = create_app(embedded(tmp_path))
    routes = [
        route
        for route in app_routes(app.routes)
        if isinstance(route, APIRoute) and "store_id" in route.param_convertors
    ]
    assert {route.name for route in routes} >= {"get_report_store", "store_page"}
    for route in routes:
        assert isinstance(route.param_convertors["store_id"], PathConvertor), route.path
    paths = app.openapi()["paths"]
    assert "/reports/{report_id}/stores/{store_id}" in paths
    assert not [path for path in paths if ":" in path]
