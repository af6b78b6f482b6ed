"""The dashboard in a real browser: from the list, trigger a report and watch it complete without
a reload; open it, open a store, and see the week's chart drawn. Screenshots go to the test's
temporary folder (desktop and phone width)."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
import sqlalchemy as sa
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from store_monitor.db.models import Report, ReportStatus
from store_monitor.db.session import create_engine, create_sessionmaker
from support.service import wait_until_final

from .conftest import DESKTOP, PHONE

WAIT_SECONDS = 60
"""A bound, not a pause: each wait returns as soon as its condition holds."""

# Pixels of the chart's canvas that something was drawn on (not transparent).
_PAINTED_PIXELS = """
const canvas = document.querySelector('#daily-chart canvas');
if (!canvas) { return 0; }
const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let painted = 0;
for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] !== 0) { painted += 1; } }
return painted;
"""
# The fill colour of the chart's downtime bars, as the canvas holds it.
_DOWNTIME_PIXELS = """
const canvas = document.querySelector('#daily-chart canvas');
const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let found = 0;
for (let i = 0; i < pixels.length; i += 4) {
  if (pixels[i] === 0xc8 && pixels[i + 1] === 0x35 && pixels[i + 2] === 0x2e) { found += 1; }
}
return found;
"""


def wait(browser: webdriver.Chrome) -> WebDriverWait[webdriver.Chrome]:
    return WebDriverWait(browser, WAIT_SECONDS)


async def test_trigger_watch_open_report_and_store(
    service: str, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    browser.get(service + "/")
    assert browser.title.startswith("Reports")
    assert browser.find_elements(By.CSS_SELECTOR, "#reports tbody tr.empty")

    page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.ID, "trigger").click()
    row = wait(browser).until(
        expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, "#reports tbody tr[data-report-id]")
        )
    )
    wait(browser).until(lambda _: row.get_attribute("data-finished") == "true")
    # Updated in place: the page was never reloaded.
    assert page == browser.find_element(By.TAG_NAME, "html")
    assert row.find_element(By.CSS_SELECTOR, ".status").text == "Complete"
    assert row.find_element(By.CSS_SELECTOR, '[data-field="stores"]').text == "120"
    browser.save_screenshot(str(tmp_path / "reports.png"))

    row.find_element(By.CSS_SELECTOR, '[data-field="created"] a').click()
    wait(browser).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "table.stores"))
    )
    stores = browser.find_elements(By.CSS_SELECTOR, "table.stores tbody tr")
    assert len(stores) == 50  # the first page
    week = [float(store.find_elements(By.TAG_NAME, "td")[2].text) for store in stores]
    assert week == sorted(week, reverse=True)  # worst downtime first
    assert browser.find_elements(By.CSS_SELECTOR, "svg.week-bars rect.down")
    browser.save_screenshot(str(tmp_path / "report.png"))

    stores[0].find_element(By.CSS_SELECTOR, "th a").click()
    wait(browser).until(lambda driver: driver.execute_script(_PAINTED_PIXELS) > 1000)
    assert browser.find_element(By.ID, "daily-chart").get_attribute("data-drawn") == "true"
    assert browser.execute_script(_DOWNTIME_PIXELS) > 0
    assert browser.find_elements(By.CSS_SELECTOR, "table.incidents tbody tr")
    browser.save_screenshot(str(tmp_path / "store.png"))
    # The whole page too: the window as tall as the document.
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(DESKTOP[0], height)
    browser.save_screenshot(str(tmp_path / "store-full.png"))

    browser.set_window_size(*PHONE)
    browser.refresh()
    wait(browser).until(lambda driver: driver.execute_script(_PAINTED_PIXELS) > 1000)
    # Nothing wider than the screen but the tables' own scrolling boxes.
    assert browser.execute_script("return document.documentElement.scrollWidth") <= PHONE[0]
    browser.save_screenshot(str(tmp_path / "store-phone.png"))
    browser.back()
    browser.save_screenshot(str(tmp_path / "report-phone.png"))


async def test_sign_in_then_an_owner_sees_only_their_stores(
    keyed_service: tuple[str, dict[str, str]], browser: webdriver.Chrome, tmp_path: Path
) -> None:
    service, keys = keyed_service
    browser.get(service + "/")
    # Sent to sign in first, and back to the list after.
    wait(browser).until(expected_conditions.presence_of_element_located((By.ID, "key")))
    assert "/ui/sign-in" in browser.current_url
    browser.find_element(By.ID, "key").send_keys("sm_wrong")
    browser.find_element(By.CSS_SELECTOR, "form.sign-in button").click()
    alert = wait(browser).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "[role=alert]"))
    )
    assert "not valid" in alert.text
    browser.save_screenshot(str(tmp_path / "sign-in.png"))
    browser.find_element(By.ID, "key").send_keys(keys["owner"])
    browser.find_element(By.CSS_SELECTOR, "form.sign-in button").click()
    wait(browser).until(expected_conditions.presence_of_element_located((By.ID, "trigger")))
    session = browser.get_cookie("store_monitor_session")
    assert session is not None
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Strict"
    assert keys["owner"] not in session["value"]

    browser.find_element(By.ID, "trigger").click()
    row = wait(browser).until(
        expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, "#reports tbody tr[data-report-id]")
        )
    )
    wait(browser).until(lambda _: row.get_attribute("data-finished") == "true")
    row.find_element(By.CSS_SELECTOR, '[data-field="created"] a').click()
    wait(browser).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "table.stores"))
    )
    shown = sorted(
        link.text for link in browser.find_elements(By.CSS_SELECTOR, "table.stores tbody th a")
    )
    assert shown == keys["owned"].split(",")

    browser.find_element(By.CSS_SELECTOR, "header.site form button").click()
    wait(browser).until(expected_conditions.presence_of_element_located((By.ID, "key")))
    # The cookie saved before signing out, put back: its session is over on the server.
    browser.delete_all_cookies()
    browser.add_cookie({"name": session["name"], "value": session["value"], "path": "/"})
    browser.get(service + "/")
    wait(browser).until(expected_conditions.presence_of_element_located((By.ID, "key")))
    assert "/ui/sign-in" in browser.current_url


async def test_a_store_whose_id_needs_encoding_opens_from_its_link(
    service: str, browser: webdriver.Chrome
) -> None:
    store_id = "a/b?c#d% é"
    polls = f"store_id,timestamp_utc,status\n{store_id},2026-12-01 10:00:00 UTC,inactive\n"
    async with httpx.AsyncClient(base_url=service, timeout=60) as client:
        loaded = await client.post(
            "/ingest/polls", content=polls.encode(), headers={"Content-Type": "text/csv"}
        )
        assert loaded.status_code == 200, loaded.text
        report_id = (await client.post("/trigger_report")).json()["report_id"]
        final = await wait_until_final(client, report_id, within=WAIT_SECONDS)
        assert final["status"] == "Complete"
    browser.get(f"{service}/ui/reports/{report_id}?{urlencode({'q': '/'})}")
    browser.find_element(By.LINK_TEXT, store_id).click()
    # The store's own page, the id decoded from its link exactly.
    wait(browser).until(
        lambda driver: driver.find_element(By.TAG_NAME, "h1").text == f"Store {store_id}"
    )


async def test_a_report_page_opened_early_shows_the_stores_once_done(
    service: str, postgres_url: str, browser: webdriver.Chrome
) -> None:
    # A report held by a runner that is not there, its lease far off (so no sweep takes it
    # over): running until the test says it is done.
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    try:
        async with create_sessionmaker(engine).begin() as session:
            report = Report(
                status=ReportStatus.running,
                attempts=1,
                lease_owner="the-tests",
                lease_expires_at=datetime.now(UTC) + timedelta(hours=1),
            )
            session.add(report)
        browser.get(f"{service}/ui/reports/{report.id}")
        assert browser.find_elements(By.ID, "report-waiting")
        async with create_sessionmaker(engine).begin() as session:
            await session.execute(
                sa.update(Report)
                .where(Report.id == report.id)
                .values(status=ReportStatus.complete, row_count=0, incident_count=0)
            )
    finally:
        await engine.dispose()
    wait(browser).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "table.stores"))
    )
    assert not browser.find_elements(By.ID, "report-waiting")


async def test_a_report_in_shards_shows_its_progress_as_it_goes(
    service: str, postgres_url: str, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    # A report planned in 4 shards, one of them done; no shard is there for a sweep to queue.
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    sessions = create_sessionmaker(engine)

    def progress_text(driver: webdriver.Chrome, where: str) -> str:
        # Read in one go: the list's script rebuilds the cell every second.
        text = driver.execute_script(
            "const found = document.querySelector(arguments[0]);"
            "return found ? found.textContent : '';",
            f"{where} .progress-text",
        )
        assert isinstance(text, str)
        return text

    try:
        async with sessions.begin() as session:
            report = Report(status=ReportStatus.running, attempts=1, shards_total=4, shards_left=3)
            session.add(report)
        list_page = f"{service}/"
        browser.get(list_page)
        row = f'#reports tr[data-report-id="{report.id}"]'
        assert progress_text(browser, row) == "1 of 4 shards"
        bar = browser.execute_script(
            "const bar = document.querySelector(arguments[0]); return [bar.value, bar.max];",
            f"{row} progress",
        )
        assert bar == [1, 4]

        browser.get(f"{service}/ui/reports/{report.id}")
        assert progress_text(browser, "#report-waiting") == "1 of 4 shards"
        async with sessions.begin() as session:
            await session.execute(
                sa.update(Report).where(Report.id == report.id).values(shards_left=1)
            )
        # The page's script follows the report without a reload.
        wait(browser).until(
            lambda driver: progress_text(driver, "#report-waiting") == "3 of 4 shards"
        )
        browser.save_screenshot(str(tmp_path / "report-in-shards.png"))
        browser.get(list_page)
        assert progress_text(browser, row) == "3 of 4 shards"
        async with sessions.begin() as session:
            await session.execute(
                sa.update(Report)
                .where(Report.id == report.id)
                .values(status=ReportStatus.complete, shards_left=0, row_count=0, incident_count=0)
            )
        # The list's script too: the bar goes once the report is complete.
        wait(browser).until(
            lambda driver: (
                driver.find_element(By.CSS_SELECTOR, row).get_attribute("data-finished") == "true"
            )
        )
        assert not browser.find_elements(By.CSS_SELECTOR, f"{row} progress")
    finally:
        await engine.dispose()
