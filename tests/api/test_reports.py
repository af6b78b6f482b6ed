"""A report end to end through the API, in both modes: upload the files, trigger, poll, download.
The download must be byte for byte what the CLI computes from the same files."""

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from store_monitor.synthetic import GeneratedFiles
from support.service import expected_csv, upload_all, wait_until_final


async def test_report_matches_the_cli(
    client: httpx.AsyncClient, data_files: GeneratedFiles
) -> None:
    await upload_all(client, data_files)

    triggered = await client.post("/trigger_report")
    assert triggered.status_code == 202, triggered.text
    report_id = triggered.json()["report_id"]
    assert triggered.json()["status"] in ("Pending", "Running", "Complete")

    metadata = await wait_until_final(client, report_id)
    assert metadata["status"] == "Complete", metadata
    assert metadata["row_count"] == data_files.stores
    assert metadata["attempts"] == 1

    download = await client.get(f"/get_report/{report_id}")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert download.headers["x-report-status"] == "Complete"
    assert download.headers["content-disposition"] == (
        f'attachment; filename="report-{report_id}.csv"'
    )
    assert download.content == expected_csv(data_files)

    again = await client.get(f"/reports/{report_id}/csv")
    assert again.status_code == 200
    assert again.content == download.content


async def test_as_of(client: httpx.AsyncClient, data_files: GeneratedFiles) -> None:
    await upload_all(client, data_files)
    as_of = datetime(2023, 1, 24, 12, 30, tzinfo=UTC)

    # A naive instant is UTC, like the CLI's --as-of.
    triggered = await client.post("/trigger_report", json={"as_of": "2023-01-24T12:30:00"})
    assert triggered.status_code == 202, triggered.text
    report_id = triggered.json()["report_id"]

    metadata = await wait_until_final(client, report_id)
    assert metadata["status"] == "Complete"
    assert datetime.fromisoformat(metadata["as_of"]) == as_of
    assert datetime.fromisoformat(metadata["now"]) == as_of
    assert metadata["ignored_polls"] > 0
    download = await client.get(f"/get_report/{report_id}")
    assert download.content == expected_csv(data_files, as_of=as_of)


async def test_fifty_concurrent_reports_are_independent(
    client: httpx.AsyncClient, data_files: GeneratedFiles
) -> None:
    await upload_all(client, data_files)
    start = datetime(2023, 1, 25, 17, 0, tzinfo=UTC)
    instants = [start - timedelta(hours=3 * i, minutes=7 * i) for i in range(50)]

    triggered = await asyncio.gather(
        *(client.post("/trigger_report", json={"as_of": t.isoformat()}) for t in instants)
    )
    assert all(response.status_code == 202 for response in triggered)
    ids = [response.json()["report_id"] for response in triggered]
    assert len(set(ids)) == 50

    # Waited for one after the other: fifty pollers at once would only slow the jobs down.
    finals = [await wait_until_final(client, report_id, within=60) for report_id in ids]
    assert [final["status"] for final in finals] == ["Complete"] * 50
    downloads = await asyncio.gather(*(client.get(f"/get_report/{i}") for i in ids))
    for instant, download in zip(instants, downloads, strict=True):
        assert download.content == expected_csv(data_files, as_of=instant), instant


async def test_idempotency_key_returns_the_same_report(
    client: httpx.AsyncClient, data_files: GeneratedFiles
) -> None:
    await upload_all(client, data_files)
    key = {"Idempotency-Key": "nightly-2023-01-25"}

    first = await client.post("/trigger_report", headers=key)
    second = await client.post("/trigger_report", headers=key)
    other = await client.post("/trigger_report")
    assert first.status_code == second.status_code == 202
    assert second.json()["report_id"] == first.json()["report_id"]
    assert second.headers["idempotent-replayed"] == "true"
    assert other.json()["report_id"] != first.json()["report_id"]

    await wait_until_final(client, first.json()["report_id"])
    replay = await client.post("/trigger_report", headers=key)
    assert replay.json() == {"report_id": first.json()["report_id"], "status": "Complete"}

    conflict = await client.post(
        "/trigger_report", headers=key, json={"as_of": "2023-01-20T00:00:00Z"}
    )
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_key_reused"
    assert conflict.json()["error"]["details"]["report_id"] == first.json()["report_id"]


async def test_a_report_without_data_is_an_empty_csv(client: httpx.AsyncClient) -> None:
    report_id = (await client.post("/trigger_report")).json()["report_id"]
    metadata = await wait_until_final(client, report_id)
    assert metadata["status"] == "Complete"
    assert metadata["row_count"] == 0
    assert metadata["now"] is None
    download = await client.get(f"/get_report/{report_id}")
    assert download.text == (
        "store_id,uptime_last_hour,uptime_last_day,uptime_last_week,"
        "downtime_last_hour,downtime_last_day,downtime_last_week\n"
    )


async def test_unknown_report_is_404(client: httpx.AsyncClient) -> None:
    for path in (
        "/get_report/00000000-0000-4000-8000-000000000000",
        "/reports/00000000-0000-4000-8000-000000000000",
        "/reports/00000000-0000-4000-8000-000000000000/csv",
    ):
        response = await client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "report_not_found"
