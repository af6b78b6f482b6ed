"""The "Down now" page in a real browser: it lists the stores down now and, while open, follows
the live view as new polls arrive, without a reload."""

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from store_monitor.synthetic import GeneratedFiles

WAIT_SECONDS = 60


async def _evaluated(client: httpx.AsyncClient) -> dict[str, object]:
    """`GET /live` once evaluation has caught up with the latest poll."""
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            body: dict[str, object] = (await client.get("/live")).json()
            if body["now"] is not None and body["now"] == body["latest_poll_at"]:
                return body
            await asyncio.sleep(0.1)


async def test_down_now_updates_while_open(
    service: str, browser: webdriver.Chrome, data: GeneratedFiles, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=service, timeout=60) as client:
        before = await _evaluated(client)
        browser.get(service + "/ui/live")
        assert browser.title.startswith("Down now")
        page = browser.find_element(By.TAG_NAME, "html")
        shown_before = browser.find_element(By.ID, "live-now").text
        stores = sorted(
            {line.split(",")[0] for line in data.store_status.read_text().splitlines()[1:]}
        )
        down_before = {store["store_id"] for store in before["stores"]}  # type: ignore[attr-defined]
        newly_down = next(store for store in stores if store not in down_before)

        # An hour later, every store polled: all of them active but one.
        assert isinstance(before["now"], str)
        later = datetime.fromisoformat(before["now"]) + timedelta(hours=1)
        stamp = later.strftime("%Y-%m-%d %H:%M:%S.%f UTC")
        rows = [f"{s},{'inactive' if s == newly_down else 'active'},{stamp}" for s in stores]
        polls = "store_id,status,timestamp_utc\n" + "\n".join(rows) + "\n"
        uploaded = await client.post(
            "/ingest/polls", content=polls.encode(), headers={"Content-Type": "text/csv"}
        )
        assert uploaded.status_code == 200, uploaded.text
        await _evaluated(client)

    def shows_the_new_hour(driver: webdriver.Chrome) -> bool:
        return driver.find_element(By.ID, "live-now").text != shown_before

    await asyncio.to_thread(WebDriverWait(browser, WAIT_SECONDS).until, shows_the_new_hour)
    listed = [
        row.get_attribute("data-store-id")
        for row in browser.find_elements(By.CSS_SELECTOR, "#live tbody tr[data-store-id]")
    ]
    assert listed == [newly_down]  # everyone else polled active
    assert page == browser.find_element(By.TAG_NAME, "html")  # updated in place
    row = browser.find_element(By.CSS_SELECTOR, "#live tbody tr[data-store-id]")
    cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
    # Inactive from about the midpoint between its last poll and this one, an hour later.
    assert cells[3].endswith(" min")
    assert int(cells[3].split()[0]) < 60
    assert cells[2].endswith("UTC")
    browser.save_screenshot(str(tmp_path / "live.png"))
