"""Owners on Postgres: the owners source replaces the memberships of the owners it names, and an
owner key triggers and reads reports whose downloads hold exactly the owner's stores."""

from typing import Any

import httpx
import polars as pl
import sqlalchemy as sa

from store_monitor.db.models import StoreOwner
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.settings import Settings
from store_monitor.synthetic import GeneratedFiles
from support.service import (
    arq_worker,
    bearer,
    create_key,
    expected_csv,
    upload_all,
    wait_until_final,
)

from .conftest import Keys

CSV = {"Content-Type": "text/csv"}


def _stores(files: GeneratedFiles) -> list[str]:
    return sorted(pl.read_csv(files.timezones, infer_schema=False)["store_id"].unique())


def _rows_of(csv: bytes, stores: set[str]) -> bytes:
    header, *rows = csv.decode().splitlines(keepends=True)
    return (header + "".join(row for row in rows if row.split(",")[0] in stores)).encode()


async def _memberships(url: str) -> set[tuple[str, str]]:
    engine = create_engine(url, process_name="store-monitor-tests")
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await session.execute(sa.select(StoreOwner.owner_id, StoreOwner.store_id))
            return {(owner, store) for owner, store in rows}
    finally:
        await engine.dispose()


async def _upload_owners(client: httpx.AsyncClient, admin: str, csv: str) -> dict[str, Any]:
    response = await client.post(
        "/ingest/owners", content=csv.encode(), headers={**CSV, **bearer(admin)}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_owners_source_replaces_the_owners_it_names(
    client: httpx.AsyncClient, keys: Keys, postgres_url: str
) -> None:
    first = await _upload_owners(
        client, keys.admin, "owner_id,store_id\nbrand,1\nbrand,2\nfranchise,2\n"
    )
    assert first == {"source": "owners", "rows_received": 3, "rows_added": 3, "stores": 2}
    # Only `brand` is in the second file: its stores are replaced, `franchise` keeps its own.
    second = await _upload_owners(client, keys.admin, "owner_id,store_id\nbrand,3\nbrand,3\n")
    assert second == {"source": "owners", "rows_received": 2, "rows_added": 1, "stores": 1}
    assert await _memberships(postgres_url) == {("brand", "3"), ("franchise", "2")}


async def test_a_bad_owners_file_is_422_naming_line_and_column(
    client: httpx.AsyncClient, keys: Keys, postgres_url: str
) -> None:
    response = await client.post(
        "/ingest/owners",
        content=b"owner_id,store_id\nbrand,1\n ,2\n",
        headers={**CSV, **bearer(keys.admin)},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_csv"
    assert error["message"] == "store owners, line 3, column 'owner_id': empty value"
    assert await _memberships(postgres_url) == set()


async def test_an_owner_key_downloads_exactly_its_stores(
    client: httpx.AsyncClient,
    keys: Keys,
    settings: Settings,
    postgres_url: str,
    data_files: GeneratedFiles,
) -> None:
    client.headers.update(bearer(keys.admin))
    await upload_all(client, data_files)
    stores = _stores(data_files)
    brand, franchise = set(stores[:5]), {stores[4], stores[7]}  # one store under both
    lines = [f"brand,{s}" for s in brand] + [f"franchise,{s}" for s in franchise]
    await _upload_owners(client, keys.admin, "owner_id,store_id\n" + "\n".join(lines) + "\n")
    brand_key = bearer(await create_key(postgres_url, "brand-owner", owner_id="brand"))
    franchise_key = bearer(await create_key(postgres_url, "franchisee", owner_id="franchise"))
    nobody_key = bearer(await create_key(postgres_url, "new-owner", owner_id="nobody"))

    async with arq_worker(settings):
        # An owner key may trigger and read reports.
        triggered = await client.post("/trigger_report", headers=brand_key)
        assert triggered.status_code == 202, triggered.text
        report_id = triggered.json()["report_id"]
        metadata = await wait_until_final(client, report_id)
    assert metadata["status"] == "Complete"
    everything = expected_csv(data_files)

    for key, owned in [(brand_key, brand), (franchise_key, franchise), (nobody_key, set())]:
        for path in (f"/reports/{report_id}/csv", f"/get_report/{report_id}"):
            response = await client.get(path, headers=key)
            assert response.status_code == 200, response.text
            assert response.content == _rows_of(everything, owned), path
    # Sanity: the narrowing left some rows, and an unrestricted key gets them all.
    assert _rows_of(everything, brand).count(b"\n") == len(brand) + 1
    assert (await client.get(f"/reports/{report_id}/csv")).content == everything

    # Owner keys load nothing.
    for path in ("/ingest/polls", "/ingest/owners"):
        refused = await client.post(path, content=b"x", headers={**CSV, **brand_key})
        assert refused.status_code == 403
