"""What a person checks on each page, in Chromium at desktop and phone width: nothing wider than
the screen, chart labels apart, the summary there, the pinned store column narrow, the incidents
whole; and axe-core finds no serious or critical accessibility problem on any page (the list,
a report, a store, Down now, schedules, webhooks).

Screenshots go to the test's temporary folder; with `DASHBOARD_SCREENSHOT=<file>` (`make
screenshot`) the store page at desktop width is also written there, the README's picture."""

import base64
import itertools
import json
import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from .conftest import DESKTOP, PHONE

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
WAIT_SECONDS = 60
SCREENSHOT_ENV = "DASHBOARD_SCREENSHOT"

_AXE_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, { resultTypes: ["violations"] }).then(
  (result) => done(result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
  }))),
  (error) => done([{ id: "axe-error", impact: "critical", help: String(error), nodes: [] }]),
);
"""
# The x axis's labels of a chart as drawn: each one's left and right edge in CSS pixels, from
# the positions uPlot drew them at and the text's width in the axis's font.
_LABEL_BOXES = """
const u = document.getElementById(arguments[0]).uplot;
const axis = u.axes[0];
const context = document.createElement("canvas").getContext("2d");
context.font = Array.isArray(axis.font) ? axis.font[0] : axis.font;
const boxes = [];
axis._splits.forEach((split, i) => {
  const text = String(axis._values[i] ?? "");
  if (!text) { return; }
  const centre = u.valToPos(split, "x");
  const half = context.measureText(text).width / devicePixelRatio / 2;
  boxes.push([text, centre - half, centre + half]);
});
return boxes;
"""


def wait(browser: webdriver.Chrome) -> WebDriverWait[webdriver.Chrome]:
    return WebDriverWait(browser, WAIT_SECONDS)


@pytest.fixture
def reports(service: str) -> tuple[str, str]:
    """Two complete reports a week apart: (the latest's id, its worst store)."""
    with httpx.Client(base_url=service, timeout=60) as client:
        latest = _complete(client, {})
        now = datetime.fromisoformat(client.get(f"/reports/{latest}").json()["now"])
        _complete(client, {"as_of": (now - timedelta(days=7)).isoformat()})
        worst = client.get(f"/reports/{latest}/summary").json()["worst_stores"][0]["store_id"]
    return latest, worst


def _complete(client: httpx.Client, body: dict[str, Any]) -> str:
    report_id: str = client.post("/trigger_report", json=body).json()["report_id"]
    for _ in range(600):
        status = client.get(f"/reports/{report_id}").json()["status"]
        if status in ("Complete", "Failed"):
            assert status == "Complete"
            return report_id
        time.sleep(0.1)
    raise AssertionError("the report did not complete")


def no_serious_violations(browser: webdriver.Chrome) -> list[dict[str, Any]]:
    if not browser.execute_script("return typeof axe !== 'undefined'"):
        browser.execute_script(AXE.read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = browser.execute_async_script(_AXE_RUN)
    return [v for v in found if v["impact"] in ("serious", "critical")]


def overlapping_labels(browser: webdriver.Chrome, chart_id: str) -> list[str]:
    boxes = browser.execute_script(_LABEL_BOXES, chart_id)
    assert boxes, f"{chart_id} has no x labels"
    return [
        f"{left[0]!r} and {right[0]!r}"
        for left, right in itertools.pairwise(boxes)
        if left[2] + 2 > right[1]  # two pixels apart at least
    ]


def page_overflow(browser: webdriver.Chrome) -> int:
    """CSS pixels the page is wider than the window (tables scroll in boxes of their own)."""
    found: int = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return found


def shoot(browser: webdriver.Chrome, path: Path) -> None:
    """The whole page, below the window too, at the window's width."""
    height = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]["height"]
    # The window's width: captured beyond the window, the page has no scroll bar to leave out.
    width = browser.execute_script("return window.innerWidth")
    clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_each_page_reads_well(
    service: str,
    reports: tuple[str, str],
    browser: webdriver.Chrome,
    tmp_path: Path,
    size: tuple[int, int],
) -> None:
    latest, worst = reports
    width = size[0]
    browser.set_window_size(*size)
    problems: dict[str, list[Any]] = {}

    browser.get(service + "/")
    wait(browser).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "#reports tbody tr"))
    assert page_overflow(browser) == 0, "the list is wider than the window"
    problems["list"] = no_serious_violations(browser)
    shoot(browser, tmp_path / f"list-{width}.png")

    browser.get(f"{service}/ui/reports/{latest}")
    summary = browser.find_element(By.CSS_SELECTOR, "section.summary")
    assert "Business hours lost" in summary.text
    assert len(summary.find_elements(By.CSS_SELECTOR, "ol.worst a")) == 5
    assert "report of" in summary.find_element(By.TAG_NAME, "caption").text
    changes = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "td.change")]
    assert len(changes) == 50
    assert any(change != "—" for change in changes)
    assert page_overflow(browser) == 0, "the report page is wider than the window"
    pinned = browser.find_element(By.CSS_SELECTOR, "table.stores tbody th").rect["width"]
    box = (
        browser.find_element(By.CSS_SELECTOR, "table.stores")
        .find_element(By.XPATH, "..")
        .rect["width"]
    )
    # The store id leaves room for the figures: at most 40 % of the table's box.
    assert pinned <= 0.4 * box, f"the store column takes {pinned} of {box} px"
    summary.screenshot(str(tmp_path / f"summary-{width}.png"))
    problems["report"] = no_serious_violations(browser)
    shoot(browser, tmp_path / f"report-{width}.png")

    browser.get(f"{service}/ui/reports/{latest}/stores/{worst}")
    for chart in ("daily-chart", "history-chart"):
        drawn = f'#{chart}[data-drawn="true"]'
        wait(browser).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, drawn))
        )
        assert overlapping_labels(browser, chart) == [], f"{chart}'s labels overlap"
    # The page's own legend, and none of uPlot's (empty values until hovered).
    assert not browser.find_elements(By.CSS_SELECTOR, ".u-legend")
    legend = browser.find_element(By.CSS_SELECTOR, "#daily-chart + figcaption .legend").text
    assert legend.split("\n") == ["uptime (h)", "downtime (h)"]
    history = json.loads(
        browser.find_element(By.ID, "history-chart").get_attribute("data-chart") or "{}"
    )
    assert len(history["labels"]) == 2
    assert page_overflow(browser) == 0, "the store page is wider than the window"
    incidents = browser.find_element(By.CSS_SELECTOR, "table.incidents")
    box = incidents.find_element(By.XPATH, "..")
    assert incidents.rect["width"] <= box.rect["width"], "the incidents table is cut"
    problems["store"] = no_serious_violations(browser)
    shoot(browser, tmp_path / f"store-{width}.png")
    if size == DESKTOP and (target := os.environ.get(SCREENSHOT_ENV)):
        shoot(browser, Path(target))

    # The live view and the forms' pages: no wider than the window, no serious problem.
    for name, path in (
        ("live", "/ui/live"),
        ("schedules", "/ui/schedules"),
        ("webhooks", "/ui/webhooks"),
    ):
        browser.get(service + path)
        wait(browser).until(lambda driver: driver.find_elements(By.TAG_NAME, "h1"))
        assert page_overflow(browser) == 0, f"the {name} page is wider than the window"
        problems[name] = no_serious_violations(browser)
        shoot(browser, tmp_path / f"{name}-{width}.png")

    # A webhook's page at its fullest: just made, then its secret rotated (the new one shown).
    browser.find_element(By.NAME, "url").send_keys("https://hooks.example.com/store-monitor")
    browser.find_element(By.CSS_SELECTOR, "form#subscribe-form button[type=submit]").click()
    wait(browser).until(lambda driver: driver.find_elements(By.ID, "webhook-secret"))
    assert page_overflow(browser) == 0, "the new webhook's secret is wider than the window"
    browser.find_element(By.CSS_SELECTOR, "#webhooks tbody a").click()
    wait(browser).until(lambda driver: driver.find_elements(By.ID, "rotate-secret"))
    browser.find_element(By.ID, "rotate-secret").click()
    wait(browser).until(lambda driver: driver.find_elements(By.ID, "webhook-secret"))
    assert browser.find_element(By.ID, "previous-secret").text.startswith("signs too until")
    assert page_overflow(browser) == 0, "the webhook page is wider than the window"
    problems["webhook"] = no_serious_violations(browser)
    shoot(browser, tmp_path / f"webhook-{width}.png")

    assert problems == {
        "list": [],
        "report": [],
        "store": [],
        "live": [],
        "schedules": [],
        "webhooks": [],
        "webhook": [],
    }
