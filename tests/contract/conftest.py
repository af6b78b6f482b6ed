"""Fixtures of the generated-client tests: the data files and a live service."""

import os
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest

from api.service import REDIS_URL, empty_postgres
from store_monitor.synthetic import GeneratedFiles, generate

from .live import free_port, running, wait_until_ready


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> GeneratedFiles:
    return generate(tmp_path_factory.mktemp("data"), stores=30, days=8, seed=7)


@pytest.fixture
async def service(postgres_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A live service: `store-monitor serve` and `store-monitor worker` processes on a fresh
    Postgres database and a queue of their own; its base URL."""
    await empty_postgres(postgres_url)
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("STORE_MONITOR_")}
    env |= {
        "STORE_MONITOR_DATABASE_URL": postgres_url,
        "STORE_MONITOR_REDIS_URL": REDIS_URL,
        "STORE_MONITOR_QUEUE_NAME": f"store-monitor-test:{uuid4().hex}",
        "STORE_MONITOR_LOG_LEVEL": "WARNING",
    }
    base_url = f"http://127.0.0.1:{port}"
    async with (
        running("serve", "--port", str(port), env=env, log=tmp_path / "serve.log") as server,
        running("worker", env=env, log=tmp_path / "worker.log"),
    ):
        await wait_until_ready(base_url, server, tmp_path / "serve.log")
        yield base_url
