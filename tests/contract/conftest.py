"""Fixtures of the generated-client tests: the data files and a live service."""

import os
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest

from store_monitor.synthetic import GeneratedFiles, generate
from support.live import running, wait_until_ready
from support.processes import free_port
from support.service import REDIS_URL, SECRET_KEY, empty_postgres


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> GeneratedFiles:
    return generate(tmp_path_factory.mktemp("data"), stores=30, days=8, seed=7)


@pytest.fixture
async def service_env(postgres_url: str) -> dict[str, str]:
    """The environment of a live service on a fresh Postgres database and a queue of its own;
    authentication is required, as by default with an external database."""
    await empty_postgres(postgres_url)
    env = {key: value for key, value in os.environ.items() if not key.startswith("STORE_MONITOR_")}
    return env | {
        "STORE_MONITOR_DATABASE_URL": postgres_url,
        "STORE_MONITOR_REDIS_URL": REDIS_URL,
        "STORE_MONITOR_QUEUE_NAME": f"store-monitor-test:{uuid4().hex}",
        "STORE_MONITOR_LOG_LEVEL": "WARNING",
        "STORE_MONITOR_SECRET_KEY": SECRET_KEY,
        # The webhook tests' receivers are on 127.0.0.1.
        "STORE_MONITOR_WEBHOOK_PRIVATE_TARGETS": "true",
    }


@pytest.fixture
async def service(service_env: dict[str, str], tmp_path: Path) -> AsyncIterator[str]:
    """A live service: `store-monitor serve` and `store-monitor worker` processes; its base URL."""
    port = free_port()
    env = service_env
    base_url = f"http://127.0.0.1:{port}"
    async with (
        running("serve", "--port", str(port), env=env, log=tmp_path / "serve.log") as server,
        running("worker", env=env, log=tmp_path / "worker.log"),
    ):
        await wait_until_ready(base_url, server, tmp_path / "serve.log")
        yield base_url
