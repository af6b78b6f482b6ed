"""Fixtures of the browser tests: a live service with data loaded, and a headless Chromium.

The browser is Debian's `chromium` driven through its `chromium-driver` (`.ci/run` installs
both); without them the tests skip on a laptop and fail in CI.
"""

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from api.service import empty_postgres
from contract.live import free_port, running, wait_until_ready
from store_monitor.synthetic import GeneratedFiles, generate

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DESKTOP = (1280, 1000)
PHONE = (390, 844)
"""CSS pixels of a common phone's screen."""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> GeneratedFiles:
    return generate(tmp_path_factory.mktemp("data"), stores=120, days=8, seed=11)


@pytest.fixture
async def service(postgres_url: str, tmp_path: Path, data: GeneratedFiles) -> AsyncIterator[str]:
    """`store-monitor serve` (in-process jobs) on a fresh Postgres database with `data` loaded;
    its base URL."""
    await empty_postgres(postgres_url)
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("STORE_MONITOR_")}
    env |= {
        "STORE_MONITOR_DATABASE_URL": postgres_url,
        "STORE_MONITOR_AUTH": "off",
        "STORE_MONITOR_LOG_LEVEL": "WARNING",
    }
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    async with running("serve", "--port", str(port), env=env, log=log) as server:
        await wait_until_ready(base_url, server, log)
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            for path, route in (
                (data.store_status, "/ingest/polls"),
                (data.menu_hours, "/ingest/business-hours"),
                (data.timezones, "/ingest/timezones"),
            ):
                response = await client.post(
                    route, content=path.read_bytes(), headers={"Content-Type": "text/csv"}
                )
                assert response.status_code == 200, response.text
        yield base_url


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a profile of its own, at desktop size."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists() and shutil.which("chromedriver")):
        if os.environ.get("CI"):
            pytest.fail("the browser tests need chromium: CI must install chromium chromium-driver")
        pytest.skip("the browser tests need chromium (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(
        options=options,
        service=Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "driver.log")),
    )
    try:
        yield driver
    finally:
        driver.quit()
