"""Fixtures of the access tests: a small data set and an app on Postgres with keys required."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from store_monitor.db.models import KeyScope
from store_monitor.settings import Settings
from store_monitor.synthetic import GeneratedFiles, generate
from support.service import create_key, empty_postgres, postgres_with_keys, serve


@pytest.fixture(scope="session")
def data_files(tmp_path_factory: pytest.TempPathFactory) -> GeneratedFiles:
    return generate(tmp_path_factory.mktemp("access-data"), stores=12, days=8, seed=5)


@dataclass(frozen=True)
class Keys:
    admin: str
    ingest: str
    reports: str
    metrics: str


@pytest.fixture
async def settings(postgres_url: str) -> Settings:
    await empty_postgres(postgres_url)
    return postgres_with_keys(postgres_url)


@pytest.fixture
async def keys(postgres_url: str, settings: Settings) -> Keys:
    made = {
        scope: await create_key(postgres_url, f"{scope.value}-key", scope=scope)
        for scope in KeyScope
    }
    return Keys(
        admin=made[KeyScope.admin],
        ingest=made[KeyScope.ingest],
        reports=made[KeyScope.reports],
        metrics=made[KeyScope.metrics],
    )


@pytest.fixture
async def client(settings: Settings, keys: Keys) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app with authentication required; it sends no key unless told."""
    async with serve(settings) as client:
        yield client
