"""The dashboard's pages over HTTP: what they show, their links and downloads, CSRF, headers."""

import re

import httpx
import polars as pl

from store_monitor.db.models import Report, ReportStatus
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.engine import compute_report
from store_monitor.formats import daily_csv_bytes, incidents_csv_bytes
from store_monitor.sources import read_business_hours, read_polls, read_timezones
from store_monitor.synthetic import GeneratedFiles
from store_monitor.web.headers import HTML_CSP, REFERRER_POLICY
from support.service import expected_csv

from .conftest import csrf_token

_STORE_LINK = re.compile(r'<th scope="row"><a href="(/ui/reports/[^"]+/stores/([^"]+))">')


def offline_rows(files: GeneratedFiles) -> pl.DataFrame:
    return compute_report(
        read_polls(files.store_status),
        read_business_hours(files.menu_hours),
        read_timezones(files.timezones),
    ).rows


async def test_home_lists_reports_with_a_csrf_protected_trigger(
    open_client: httpx.AsyncClient, complete: str
) -> None:
    home = await open_client.get("/")
    assert home.status_code == 200
    assert home.headers["content-type"].startswith("text/html")
    assert home.headers["content-security-policy"] == HTML_CSP
    assert home.headers["referrer-policy"] == REFERRER_POLICY
    assert home.headers["x-frame-options"] == "DENY"
    assert home.headers["x-content-type-options"] == "nosniff"
    # No inline script: every script element loads a file of this host.
    assert re.findall(r"<script(?![^>]* src=\"/ui/static/)", home.text) == []
    assert " onclick=" not in home.text
    assert f'data-report-id="{complete}"' in home.text
    cookie = home.headers.get("set-cookie") or ""
    assert cookie == "" or ("HttpOnly" in cookie and "SameSite=strict" in cookie)

    # No token, or a wrong one: refused, nothing started.
    for data in ({}, {"csrf_token": "forged"}):
        refused = await open_client.post("/ui/reports", data=data)
        assert refused.status_code == 403
    # A plain form post with the page's token: a new report, and back to the list.
    posted = await open_client.post("/ui/reports", data={"csrf_token": csrf_token(home.text)})
    assert posted.status_code == 303
    assert posted.headers["location"] == "/"
    assert (await open_client.get("/")).text.count("data-report-id=") == 2

    status = await open_client.get(f"/ui/reports/{complete}/status.json")
    assert status.json()["status"] == "Complete"
    assert status.json()["stores"] == 70


async def test_report_page_sorts_filters_and_pages(
    open_client: httpx.AsyncClient, complete: str, ui_data: GeneratedFiles
) -> None:
    rows = offline_rows(ui_data)
    page = await open_client.get(f"/ui/reports/{complete}")
    assert page.status_code == 200
    shown = [store for _, store in _STORE_LINK.findall(page.text)]
    worst = rows.sort(["downtime_last_week", "store_id"], descending=[True, False])
    assert shown == worst["store_id"].head(50).to_list()
    assert "page 1 of 2" in page.text
    assert 'aria-sort="descending"' in page.text

    second = await open_client.get(f"/ui/reports/{complete}", params={"page": 2})
    assert [s for _, s in _STORE_LINK.findall(second.text)] == worst["store_id"][50:].to_list()

    by_id = await open_client.get(
        f"/ui/reports/{complete}", params={"sort": "store_id", "order": "asc"}
    )
    assert [s for _, s in _STORE_LINK.findall(by_id.text)] == sorted(rows["store_id"])[:50]

    wanted = rows["store_id"][0][3:7]
    filtered = await open_client.get(f"/ui/reports/{complete}", params={"q": wanted})
    assert {s for _, s in _STORE_LINK.findall(filtered.text)} == set(
        rows.filter(pl.col("store_id").str.contains(wanted, literal=True))["store_id"]
    )
    bad = await open_client.get(f"/ui/reports/{complete}", params={"sort": "nonsense"})
    assert bad.status_code == 422
    # Control characters never reach a query (Postgres refuses a NUL): the filter, a store's
    # page and a store's download answer 422 instead of a 500.
    for url, params in (
        (f"/ui/reports/{complete}", {"q": "a\x00b"}),
        (f"/ui/reports/{complete}/stores/a%00b", {}),
        (f"/ui/reports/{complete}/files/incidents.csv", {"store_id": "\x00"}),
    ):
        refused = await open_client.get(url, params=params)
        assert refused.status_code == 422, (url, refused.text)


async def test_store_page_and_downloads(
    open_client: httpx.AsyncClient, complete: str, ui_data: GeneratedFiles
) -> None:
    page = await open_client.get(f"/ui/reports/{complete}")
    link, store = _STORE_LINK.findall(page.text)[0]
    store_page = await open_client.get(link)
    assert store_page.status_code == 200
    assert f"Store {store}" in store_page.text
    assert 'id="daily-chart"' in store_page.text
    assert "data-chart=" in store_page.text
    assert "Time zone <strong>" in store_page.text
    assert "uPlot.iife.min.js" in store_page.text

    missing = await open_client.get(f"/ui/reports/{complete}/stores/no-such-store")
    assert missing.status_code == 404

    report = compute_report(
        read_polls(ui_data.store_status),
        read_business_hours(ui_data.menu_hours),
        read_timezones(ui_data.timezones),
    )
    assert report.incidents is not None
    assert report.daily is not None
    files = {
        "report": expected_csv(ui_data),
        "incidents": incidents_csv_bytes(report.incidents),
        "daily": daily_csv_bytes(report.daily),
    }
    for kind, expected in files.items():
        download = await open_client.get(f"/ui/reports/{complete}/files/{kind}.csv")
        assert download.status_code == 200
        assert download.content == expected
    own = await open_client.get(
        f"/ui/reports/{complete}/files/incidents.csv", params={"store_id": store}
    )
    assert own.content == incidents_csv_bytes(report.incidents.filter(pl.col("store_id") == store))


async def test_static_files_are_served_with_the_vendored_chart(
    open_client: httpx.AsyncClient,
) -> None:
    for path in (
        "/ui/static/vendor/uplot/uPlot.iife.min.js",
        "/ui/static/vendor/uplot/uPlot.min.css",
        "/ui/static/store-chart.js",
        "/ui/static/reports.js",
        "/ui/static/report-wait.js",
        "/ui/static/progress.js",
        "/ui/static/dashboard.css",
    ):
        response = await open_client.get(path)
        assert response.status_code == 200, path


async def test_a_malformed_list_position_is_a_400(open_client: httpx.AsyncClient) -> None:
    response = await open_client.get("/", params={"before": "not-a-cursor"})
    assert response.status_code == 400
    assert "not a cursor" in response.text


async def test_a_failed_report_shows_why_and_has_no_stores(
    open_client: httpx.AsyncClient, postgres_url: str
) -> None:
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    try:
        async with create_sessionmaker(engine).begin() as session:
            report = Report(status=ReportStatus.failed, error="the engine gave up")
            session.add(report)
        report_id = report.id
    finally:
        await engine.dispose()
    page = await open_client.get(f"/ui/reports/{report_id}")
    assert page.status_code == 200
    assert "Failed" in page.text
    assert "the engine gave up" in page.text
    assert 'table class="stores"' not in page.text
    assert (await open_client.get(f"/ui/reports/{report_id}/stores/x")).status_code == 404
    download = await open_client.get(f"/ui/reports/{report_id}/files/report.csv")
    assert download.status_code == 404
    unknown = await open_client.get("/ui/reports/0b5e6f3c-8d51-4c2e-9a7b-3f1d2e4c5a6b")
    assert unknown.status_code == 404


async def test_a_report_computed_in_shards_shows_its_progress(
    open_client: httpx.AsyncClient, postgres_url: str
) -> None:
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    try:
        async with create_sessionmaker(engine).begin() as session:
            report = Report(status=ReportStatus.running, shards_total=4, shards_left=3)
            session.add(report)
        report_id = report.id
    finally:
        await engine.dispose()
    bar = '<progress value="1" max="4"></progress> <span class="progress-text">1 of 4 shards'
    for path in ("/", f"/ui/reports/{report_id}"):
        page = await open_client.get(path)
        assert page.status_code == 200
        assert bar in page.text
    status = await open_client.get(f"/ui/reports/{report_id}/status.json")
    assert (status.json()["shards_done"], status.json()["shards_total"]) == (1, 4)
