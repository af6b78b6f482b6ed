"""A report's incidents, daily figures and single stores through the API, in both modes: the CSVs
are byte for byte the CLI's, a store's JSON says the same as they do."""

from datetime import datetime, timedelta
from typing import Any

import httpx
import polars as pl

from store_monitor.engine import compute_report
from store_monitor.formats import daily_csv_bytes, incidents_csv_bytes
from store_monitor.sources import read_business_hours, read_polls, read_timezones
from store_monitor.synthetic import GeneratedFiles
from support.service import upload_all, wait_until_final


def offline(files: GeneratedFiles) -> Any:
    return compute_report(
        read_polls(files.store_status),
        read_business_hours(files.menu_hours),
        read_timezones(files.timezones),
    )


async def complete_report(client: httpx.AsyncClient, files: GeneratedFiles) -> dict[str, Any]:
    await upload_all(client, files)
    triggered = await client.post("/trigger_report")
    assert triggered.status_code == 202, triggered.text
    metadata = await wait_until_final(client, triggered.json()["report_id"])
    assert metadata["status"] == "Complete", metadata
    return metadata


async def test_incidents_and_daily_are_the_clis_bytes(
    client: httpx.AsyncClient, data_files: GeneratedFiles
) -> None:
    metadata = await complete_report(client, data_files)
    report_id = metadata["report_id"]
    expected = offline(data_files)
    assert metadata["incident_count"] == expected.incidents.height > 0

    incidents = await client.get(f"/reports/{report_id}/incidents")
    assert incidents.status_code == 200, incidents.text
    assert incidents.headers["content-type"].startswith("text/csv")
    assert incidents.headers["content-disposition"] == (
        f'attachment; filename="incidents-{report_id}.csv"'
    )
    assert incidents.content == incidents_csv_bytes(expected.incidents)

    daily = await client.get(f"/reports/{report_id}/daily")
    assert daily.status_code == 200, daily.text
    assert daily.content == daily_csv_bytes(expected.daily)

    store = expected.incidents["store_id"][0]
    narrowed = await client.get(f"/reports/{report_id}/incidents", params={"store_id": store})
    assert narrowed.content == incidents_csv_bytes(
        expected.incidents.filter(pl.col("store_id") == store)
    )
    narrowed = await client.get(f"/reports/{report_id}/daily", params={"store_id": store})
    assert narrowed.content == daily_csv_bytes(expected.daily.filter(pl.col("store_id") == store))
    # One store's file is named after it: a second download does not overwrite the whole one.
    assert narrowed.headers["content-disposition"] == (
        f'attachment; filename="daily-{report_id}-{store}.csv"'
    )


async def test_a_store_the_report_has_not_is_404_as_for_its_json(
    client: httpx.AsyncClient, data_files: GeneratedFiles
) -> None:
    report_id = (await complete_report(client, data_files))["report_id"]
    expected = offline(data_files)
    for kind in ("daily", "incidents"):
        nobody = await client.get(f"/reports/{report_id}/{kind}", params={"store_id": "no-such"})
        assert nobody.status_code == 404, nobody.text
        assert nobody.json()["error"]["details"] == {"report_id": report_id, "store_id": "no-such"}
        assert nobody.json()["error"]["code"] == "store_not_found"
    quiet = expected.rows.join(expected.incidents, on="store_id", how="anti")["store_id"]
    assert quiet.len() > 0, "the data set has no store without incidents"
    response = await client.get(f"/reports/{report_id}/incidents", params={"store_id": quiet[0]})
    assert response.status_code == 200
    assert response.content == b"store_id,started_at,ended_at,minutes\n"


async def test_a_store_says_what_the_csvs_say(
    client: httpx.AsyncClient, data_files: GeneratedFiles
) -> None:
    metadata = await complete_report(client, data_files)
    expected = offline(data_files)
    now = datetime.fromisoformat(metadata["now"])
    # The store with the most incidents: its counts are worth checking.
    store = (
        expected.incidents.group_by("store_id").len().sort("len", "store_id", descending=True)
    )["store_id"][0]

    response = await client.get(f"/reports/{metadata['report_id']}/stores/{store}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["store_id"] == store
    assert datetime.fromisoformat(body["now"]) == now
    row = expected.rows.filter(pl.col("store_id") == store).row(0, named=True)
    assert {name: body["figures"][name] for name in row if name != "store_id"} == {
        name: value for name, value in row.items() if name != "store_id"
    }
    own = expected.incidents.filter(pl.col("store_id") == store)
    assert [
        (
            datetime.fromisoformat(i["started_at"]),
            datetime.fromisoformat(i["ended_at"]),
            i["minutes"],
        )
        for i in body["incidents"]
    ] == own.select("started_at", "ended_at", "minutes").rows()
    assert body["figures"]["incidents_last_week"] == own.height
    assert (
        body["figures"]["incidents_last_day"]
        == own.filter(pl.col("ended_at") > now - timedelta(days=1)).height
    )
    days = expected.daily.filter(pl.col("store_id") == store)
    assert [(d["date"], d["uptime_hours"], d["downtime_hours"]) for d in body["daily"]] == [
        (day.isoformat(), up, down) for _, day, up, down in days.rows()
    ]
    zones = read_timezones(data_files.timezones).filter(pl.col("store_id") == store)
    assert body["timezone"] == (zones["timezone_str"][0] if zones.height else "America/Chicago")


async def test_unknown_store_and_unfinished_report(
    client: httpx.AsyncClient, data_files: GeneratedFiles
) -> None:
    metadata = await complete_report(client, data_files)
    missing = await client.get(f"/reports/{metadata['report_id']}/stores/no-such-store")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "store_not_found"
    unknown = await client.get("/reports/0b5e6f3c-8d51-4c2e-9a7b-3f1d2e4c5a6b/stores/no-such-store")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "report_not_found"
    for path in ("incidents", "daily"):
        response = await client.get(f"/reports/0b5e6f3c-8d51-4c2e-9a7b-3f1d2e4c5a6b/{path}")
        assert response.status_code == 404


async def test_a_store_id_no_store_can_have_is_refused_before_any_query(
    client: httpx.AsyncClient, data_files: GeneratedFiles
) -> None:
    # A NUL would make Postgres refuse the query (a 500 before this rule): the store-id rule
    # holds for the names of stores in requests as in uploads.
    report_id = (await complete_report(client, data_files))["report_id"]
    for url in (
        f"/reports/{report_id}/incidents?store_id=%00",
        f"/reports/{report_id}/daily?store_id=a%00b",
        f"/reports/{report_id}/stores/a%00b",
        f"/reports/{report_id}/stores/=HYPERLINK(1)",
    ):
        response = await client.get(url)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["error"]["code"] == "invalid_request"
