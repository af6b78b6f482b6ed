"""A report's summary and a store's history through the API, in both modes: what they say is what
the reports' CSVs say, summed in Python here and in SQL by the service."""

import io
from datetime import datetime, timedelta
from typing import Any

import httpx
import polars as pl

from store_monitor.db.models import Report
from store_monitor.synthetic import DEFAULT_END, GeneratedFiles
from support.service import app_state, upload_all, wait_until_final


async def complete(client: httpx.AsyncClient, body: dict[str, Any] | None = None) -> dict[str, Any]:
    triggered = await client.post("/trigger_report", json=body or {})
    assert triggered.status_code == 202, triggered.text
    metadata = await wait_until_final(client, triggered.json()["report_id"])
    assert metadata["status"] == "Complete", metadata
    return metadata


async def rows_of(client: httpx.AsyncClient, report_id: str) -> pl.DataFrame:
    response = await client.get(f"/reports/{report_id}/csv")
    assert response.status_code == 200, response.text
    return pl.read_csv(io.BytesIO(response.content), schema_overrides={"store_id": pl.String})


def week_of(rows: pl.DataFrame, incidents: int) -> dict[str, Any]:
    up, down = rows.select(pl.sum("uptime_last_week"), pl.sum("downtime_last_week")).row(0)
    return {
        "stores": rows.height,
        "downtime_hours": round(down, 2),
        "uptime_hours": round(up, 2),
        "downtime_percent": round(100 * round(down, 2) / (round(up, 2) + round(down, 2)), 2),
        "stores_with_downtime": rows.filter(pl.col("downtime_last_week") > 0).height,
        "incidents": incidents,
    }


async def test_a_summary_and_a_history_say_what_the_reports_say(
    client: httpx.AsyncClient, data_files: GeneratedFiles
) -> None:
    await upload_all(client, data_files)
    week_before = await complete(client, {"as_of": (DEFAULT_END - timedelta(days=7)).isoformat()})
    latest = await complete(client)
    rows, rows_before = (
        await rows_of(client, latest["report_id"]),
        await rows_of(client, week_before["report_id"]),
    )

    response = await client.get(f"/reports/{latest['report_id']}/summary")
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["report_id"] == latest["report_id"]
    assert datetime.fromisoformat(summary["now"]) == datetime.fromisoformat(latest["now"])
    assert summary["week"] == week_of(rows, latest["incident_count"])
    assert summary["week"]["downtime_hours"] > 0
    worst = rows.filter(pl.col("downtime_last_week") > 0).sort(
        ["downtime_last_week", "store_id"], descending=[True, False]
    )
    assert [store["store_id"] for store in summary["worst_stores"]] == worst["store_id"][
        :5
    ].to_list()
    before = dict(rows_before.select("store_id", "downtime_last_week").iter_rows())
    for store in summary["worst_stores"]:
        assert store["previous_downtime_hours"] == before.get(store["store_id"])
    assert summary["previous"]["report_id"] == week_before["report_id"]
    assert summary["previous"]["week"] == week_of(rows_before, week_before["incident_count"])
    assert summary["change"]["downtime_hours"] == round(
        summary["week"]["downtime_hours"] - summary["previous"]["week"]["downtime_hours"], 2
    )
    assert (
        summary["change"]["incidents"] == latest["incident_count"] - week_before["incident_count"]
    )
    # The report a week earlier has none before it.
    earlier = (await client.get(f"/reports/{week_before['report_id']}/summary")).json()
    assert (earlier["previous"], earlier["change"]) == (None, None)

    store = worst["store_id"][0]
    response = await client.get(f"/stores/{store}/history")
    assert response.status_code == 200, response.text
    history = response.json()
    assert history["store_id"] == store
    assert [entry["report_id"] for entry in history["reports"]] == [
        latest["report_id"],
        week_before["report_id"],
    ]
    figures = history["reports"][0]["figures"]
    row = rows.filter(pl.col("store_id") == store).row(0, named=True)
    assert {name: figures[name] for name in row if name != "store_id"} == {
        name: value for name, value in row.items() if name != "store_id"
    }
    detail = (await client.get(f"/reports/{latest['report_id']}/stores/{store}")).json()
    assert figures == detail["figures"]
    one = (await client.get(f"/stores/{store}/history", params={"limit": 1})).json()
    assert [entry["report_id"] for entry in one["reports"]] == [latest["report_id"]]


async def test_summary_and_history_refuse_what_they_cannot_answer(
    client: httpx.AsyncClient, data_files: GeneratedFiles
) -> None:
    unknown = await client.get("/reports/0b5e6f3c-8d51-4c2e-9a7b-3f1d2e4c5a6b/summary")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "report_not_found"
    async with app_state(client).sessionmaker.begin() as session:
        pending = Report()
        session.add(pending)
    unfinished = await client.get(f"/reports/{pending.id}/summary")
    assert unfinished.status_code == 409
    assert unfinished.json()["error"]["code"] == "report_not_complete"

    never = await client.get("/stores/never-reported/history")
    assert never.status_code == 404
    assert never.json()["error"] == {
        "code": "store_not_found",
        "message": "no complete report has store 'never-reported'",
        "details": {"store_id": "never-reported"},
    }
    for url in (
        "/stores/s/history?limit=0",
        "/stores/s/history?limit=101",
        "/stores/s/history?limit=x",
        "/stores/a%00b/history",
        "/reports/not-a-uuid/summary",
    ):
        response = await client.get(url)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["error"]["code"] == "invalid_request"
