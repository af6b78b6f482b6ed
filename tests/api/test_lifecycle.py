"""The report lifecycle through the API, in both modes: list reports newest first by pages,
delete one (computing or not), and the errors of both."""

import asyncio
import threading
from typing import Any

import httpx
import pytest

from store_monitor.engine import compute_report
from store_monitor.synthetic import GeneratedFiles
from support.service import upload_all, wait_until_final


async def _complete_reports(client: httpx.AsyncClient, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        response = await client.post("/trigger_report")
        assert response.status_code == 202, response.text
        ids.append(response.json()["report_id"])
        assert (await wait_until_final(client, ids[-1]))["status"] == "Complete"
    return ids


async def test_reports_are_listed_newest_first_by_pages(
    client: httpx.AsyncClient, data_files: GeneratedFiles
) -> None:
    await upload_all(client, data_files)
    created = await _complete_reports(client, 5)

    seen, cursor, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = await client.get("/reports", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["reports"]) <= 2
        seen += [report["report_id"] for report in page["reports"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == created[::-1]
    assert pages == 3
    first = (await client.get("/reports")).json()["reports"][0]
    assert first == (await client.get(f"/reports/{created[-1]}")).json()

    complete = await client.get("/reports", params={"status": "Complete", "limit": 200})
    assert [r["report_id"] for r in complete.json()["reports"]] == created[::-1]
    failed = await client.get("/reports", params={"status": "Failed"})
    assert failed.json() == {"reports": [], "next_cursor": None}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 201},
        {"status": "Done"},
        {"cursor": "not-a-cursor"},
        {"cursor": "W10"},
    ],
)
async def test_bad_list_parameters_are_422(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    response = await client.get("/reports", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"


async def test_a_deleted_report_is_gone_with_its_rows(
    client: httpx.AsyncClient, data_files: GeneratedFiles
) -> None:
    await upload_all(client, data_files)
    kept, deleted = await _complete_reports(client, 2)

    response = await client.delete(f"/reports/{deleted}")
    assert response.status_code == 204
    assert response.content == b""
    for path in (f"/reports/{deleted}", f"/reports/{deleted}/csv", f"/get_report/{deleted}"):
        assert (await client.get(path)).json()["error"]["code"] == "report_not_found"
    again = await client.delete(f"/reports/{deleted}")
    assert (again.status_code, again.json()["error"]["code"]) == (404, "report_not_found")
    assert (await client.delete("/reports/not-a-uuid")).status_code == 422
    listed = (await client.get("/reports")).json()["reports"]
    assert [report["report_id"] for report in listed] == [kept]
    assert (await client.get(f"/reports/{kept}/csv")).status_code == 200


async def test_deleting_a_report_being_computed_cancels_it(
    client: httpx.AsyncClient, data_files: GeneratedFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    await upload_all(client, data_files)
    computing, release = threading.Event(), threading.Event()

    def held(*args: Any, **kwargs: Any) -> Any:
        computing.set()
        release.wait(30)
        return compute_report(*args, **kwargs)

    monkeypatch.setattr("store_monitor.shards.compute_report", held)
    report_id = (await client.post("/trigger_report")).json()["report_id"]
    try:
        assert await asyncio.to_thread(computing.wait, 30)  # the job runs on this loop
        assert (await client.get(f"/reports/{report_id}")).json()["status"] == "Running"
        assert (await client.delete(f"/reports/{report_id}")).status_code == 204
    finally:
        release.set()
    monkeypatch.undo()
    # The job's final write finds the report gone; nothing comes back. A later report works.
    [later] = await _complete_reports(client, 1)
    assert (await client.get(f"/reports/{report_id}")).status_code == 404
    listed = (await client.get("/reports")).json()["reports"]
    assert [report["report_id"] for report in listed] == [later]
