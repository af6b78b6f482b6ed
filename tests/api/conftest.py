"""Fixtures of the API tests: the data files, and a client of the app in each of its modes:
embedded (its own PostgreSQL server, in-process jobs) and Postgres with an Arq worker on Redis."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from store_monitor.settings import Settings
from store_monitor.synthetic import GeneratedFiles, generate
from support.service import arq_worker, embedded, empty_postgres, postgres_mode, serve


@pytest.fixture(scope="session")
def data_files(tmp_path_factory: pytest.TempPathFactory) -> GeneratedFiles:
    return generate(tmp_path_factory.mktemp("data"), stores=20, days=8, seed=3)


@pytest.fixture(params=["embedded", "postgres"])
async def mode(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str
) -> AsyncIterator[Settings]:
    """Each mode's settings; in the Postgres mode with an empty database and a worker running."""
    if request.param == "embedded":
        yield embedded(tmp_path)
        return
    await empty_postgres(postgres_url)
    settings = postgres_mode(postgres_url)
    async with arq_worker(settings):
        yield settings


@pytest.fixture
async def client(mode: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(mode) as client:
        yield client
