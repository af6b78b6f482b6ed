"""Fixtures of the browser tests: a live service with data loaded, and a headless Chromium.

The browser is Debian's `chromium` driven through its `chromium-driver` (`.ci/run` installs
both); without them the tests skip on a laptop and fail in CI.
"""

import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from store_monitor.synthetic import GeneratedFiles, generate
from support.live import new_key, running, wait_until_ready
from support.processes import free_port
from support.service import SECRET_KEY, empty_postgres

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DESKTOP = (1400, 1000)
PHONE = (390, 844)
"""CSS pixels of a common phone's screen."""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> GeneratedFiles:
    return generate(tmp_path_factory.mktemp("data"), stores=120, days=8, seed=11)


@contextlib.asynccontextmanager
async def live(
    postgres_url: str, log: Path, data: GeneratedFiles, *, secret_key: str | None
) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """`store-monitor serve` (in-process jobs) on a fresh Postgres database with `data` loaded;
    its base URL, and the keys made for it. Keys are required if there is a `secret_key`: then
    `admin`, and `owner` of the first two stores by id (listed in `owned`)."""
    await empty_postgres(postgres_url)
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("STORE_MONITOR_")}
    env |= {"STORE_MONITOR_DATABASE_URL": postgres_url, "STORE_MONITOR_LOG_LEVEL": "WARNING"}
    keys: dict[str, str] = {}
    headers: dict[str, str] = {}
    if secret_key is None:
        env["STORE_MONITOR_AUTH"] = "off"
    else:
        env |= {"STORE_MONITOR_AUTH": "required", "STORE_MONITOR_SECRET_KEY": secret_key}
        keys["admin"] = await new_key(env, "--name", "admin", "--scope", "admin")
        keys["owner"] = await new_key(env, "--name", "owner", "--owner", "brand")
        headers = {"Authorization": f"Bearer {keys['admin']}"}
    base_url = f"http://127.0.0.1:{port}"
    async with running("serve", "--port", str(port), env=env, log=log) as server:
        await wait_until_ready(base_url, server, log)
        async with httpx.AsyncClient(base_url=base_url, timeout=60, headers=headers) as client:
            for path, route in (
                (data.store_status, "/ingest/polls"),
                (data.menu_hours, "/ingest/business-hours"),
                (data.timezones, "/ingest/timezones"),
            ):
                response = await client.post(
                    route, content=path.read_bytes(), headers={"Content-Type": "text/csv"}
                )
                assert response.status_code == 200, response.text
            if secret_key is not None:
                stores = sorted(
                    {line.split(",")[0] for line in data.store_status.read_text().splitlines()[1:]}
                )
                keys["owned"] = ",".join(stores[:2])
                owners = "owner_id,store_id\n" + "".join(f"brand,{store}\n" for store in stores[:2])
                response = await client.post(
                    "/ingest/owners", content=owners.encode(), headers={"Content-Type": "text/csv"}
                )
                assert response.status_code == 200, response.text
        yield base_url, keys


@pytest.fixture
async def service(postgres_url: str, tmp_path: Path, data: GeneratedFiles) -> AsyncIterator[str]:
    """A live service with authentication off: its base URL."""
    async with live(postgres_url, tmp_path / "serve.log", data, secret_key=None) as (url, _):
        yield url


@pytest.fixture
async def keyed_service(
    postgres_url: str, tmp_path: Path, data: GeneratedFiles
) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A live service with keys required: its base URL and keys (see `live`)."""
    async with live(postgres_url, tmp_path / "serve.log", data, secret_key=SECRET_KEY) as found:
        yield found


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
