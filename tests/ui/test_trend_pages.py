"""The pages across reports: a report opens with its summary beside the previous comparable
report, each store's change in weekly downtime, a store's history as a chart's data; and the
pages' small promises: "closed" windows, readable incident lengths, the favicon, a bad query
answered with a page, the sample said to be one."""

import html
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from store_monitor.ui import views
from store_monitor.ui.trend_view import history_view
from store_monitor.web.headers import HTML_CSP
from support.service import embedded, serve, wait_until_final

_CHANGE_CELLS = re.compile(
    r'<th scope="row"><a href="[^"]+/stores/([^"]+)">.*?<td class="num change">([^<]+)</td>', re.S
)
_HISTORY = re.compile(r'id="history-chart" class="chart" data-chart="([^"]+)"')


async def _previous_week(client: httpx.AsyncClient, now: str) -> str:
    """A complete report whose windows end a week before `now` (ISO)."""
    earlier = datetime.fromisoformat(now) - timedelta(days=7)
    started = await client.post("/trigger_report", json={"as_of": earlier.isoformat()})
    assert started.status_code == 202, started.text
    report_id: str = started.json()["report_id"]
    assert (await wait_until_final(client, report_id))["status"] == "Complete"
    return report_id


async def _summary(client: httpx.AsyncClient, report_id: str) -> dict[str, Any]:
    response = await client.get(f"/reports/{report_id}/summary")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_a_report_opens_with_its_summary_beside_the_previous_week(
    open_client: httpx.AsyncClient, complete: str
) -> None:
    alone = await open_client.get(f"/ui/reports/{complete}")
    assert "no earlier complete report" in alone.text
    assert {change for _, change in _CHANGE_CELLS.findall(alone.text)} == {"—"}

    now = (await open_client.get(f"/reports/{complete}")).json()["now"]
    previous = await _previous_week(open_client, now)
    summary = await _summary(open_client, complete)
    assert summary["previous"]["report_id"] == previous

    page = (await open_client.get(f"/ui/reports/{complete}")).text
    # The summary comes first, the table after.
    assert page.index("The week at a glance") < page.index('<table class="stores"')
    week = summary["week"]
    assert f'Business hours lost</th><td class="num">{week["downtime_hours"]:.2f} h<' in page
    assert f"{week['stores_with_downtime']} of {week['stores']}" in page
    assert f'href="/ui/reports/{previous}"' in page
    change = summary["change"]["downtime_hours"]
    assert f"{views.signed(change)} h" in page
    worst = re.findall(r'<li><a href="/ui/reports/[^"]+/stores/([^"]+)">', page)
    assert worst == [store["store_id"] for store in summary["worst_stores"]]
    assert len(worst) == 5

    # Each row's change against the previous report, as the API states it for the worst.
    changes = dict(_CHANGE_CELLS.findall(page))
    assert len(changes) == 50
    for store in summary["worst_stores"]:
        assert changes[store["store_id"]] == views.signed(store["downtime_change_hours"])


async def test_a_store_page_charts_its_history_across_reports(
    open_client: httpx.AsyncClient, complete: str
) -> None:
    now = (await open_client.get(f"/reports/{complete}")).json()["now"]
    await _previous_week(open_client, now)
    store = (await _summary(open_client, complete))["worst_stores"][0]["store_id"]
    history = (await open_client.get(f"/stores/{store}/history")).json()["reports"]
    assert len(history) == 2

    page = (await open_client.get(f"/ui/reports/{complete}/stores/{store}")).text
    found = _HISTORY.search(page)
    assert found is not None
    chart = json.loads(html.unescape(found[1]))
    # Oldest first, left to right.
    assert chart["series"][0]["values"] == [
        entry["figures"]["downtime_last_week"] for entry in reversed(history)
    ]
    assert len(chart["labels"]) == 2
    assert "2 reports" in page


def test_history_of_a_store_never_reported_is_an_empty_chart() -> None:
    view = history_view([])
    assert json.loads(view.chart_data) == {
        "labels": [],
        "series": [{"name": "downtime (h)", "colour": "down", "values": []}],
    }


def test_incident_lengths_read_as_days_hours_and_minutes() -> None:
    assert views.readable_minutes(3484.43) == "2 d 10 h 4 min"
    assert views.readable_minutes(90) == "1 h 30 min"
    assert views.readable_minutes(60) == "1 h"
    assert views.readable_minutes(0.5) == "30 s"


def test_a_window_without_business_time_is_closed() -> None:
    assert views.up_and_down(0.0, 0.0) == ("closed", "closed")
    assert views.up_and_down(0.0, 1.5) == ("0.00", "1.50")
    assert views.signed(None) == "—"
    assert views.signed(-0.5) == "\N{MINUS SIGN}0.50"
    assert views.signed(1.25) == "+1.25"


async def test_store_pages_say_closed_and_show_incident_lengths(
    open_client: httpx.AsyncClient, complete: str
) -> None:
    rows = (await open_client.get(f"/reports/{complete}/csv")).text.splitlines()[1:]
    # A store whose last hour had no business time: its row says so, not 0.00 and 0.00.
    closed = next(
        cells[0]
        for cells in (line.split(",") for line in rows)
        if float(cells[1]) == float(cells[4]) == 0  # uptime and downtime of the last hour
    )
    details = (await open_client.get(f"/reports/{complete}/stores/{closed}")).json()
    assert details["figures"]["uptime_last_hour"] == details["figures"]["downtime_last_hour"] == 0
    page = (await open_client.get(f"/ui/reports/{complete}/stores/{closed}")).text
    assert re.search(r'Last hour</th><td class="num">closed</td><td class="num">closed</td>', page)

    worst = (await _summary(open_client, complete))["worst_stores"][0]["store_id"]
    incidents = (await open_client.get(f"/reports/{complete}/stores/{worst}")).json()["incidents"]
    page = (await open_client.get(f"/ui/reports/{complete}/stores/{worst}")).text
    minutes = incidents[0]["minutes"]
    assert f'{views.readable_minutes(minutes)}<br><span class="hint">{minutes:.2f} min' in page


async def test_the_favicon_is_served(open_client: httpx.AsyncClient) -> None:
    icon = await open_client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/x-icon"
    assert icon.content.startswith(b"\x00\x00\x01\x00")  # an ICO header: reserved, type 1
    assert '<link rel="icon" href="/favicon.ico"' in (await open_client.get("/")).text


async def test_a_bad_query_on_a_page_answers_a_page(
    open_client: httpx.AsyncClient, complete: str
) -> None:
    path = f"/ui/reports/{complete}"
    refused = await open_client.get(path, params={"sort": "bogus"})
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("text/html")
    assert refused.headers["content-security-policy"] == HTML_CSP
    assert "sort: Input should be" in html.unescape(refused.text)
    assert f'<a href="{path}">' in refused.text  # the way back: the page as it opens
    assert 'href="/"' in refused.text
    # A script asking for JSON still gets the API's error.
    scripted = await open_client.get(
        path, params={"page": "0"}, headers={"Accept": "application/json"}
    )
    assert scripted.status_code == 422
    assert scripted.json()["error"]["code"] == "invalid_request"


async def test_the_pages_say_when_the_sample_is_loaded(
    tmp_path: Path, open_client: httpx.AsyncClient
) -> None:
    assert "Sample data" not in (await open_client.get("/")).text
    async with serve(embedded(tmp_path, sample_data=True)) as client:
        home = await client.get("/")
        assert "Sample data" in home.text
        assert "2023-01-25 18:00 UTC" in home.text
