"""The store owners reader: ids as exact text, one-line errors naming file, line and column; and
`store-monitor ingest` picking the file up on Postgres."""

import asyncio
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from store_monitor import frames
from store_monitor.cli import app
from store_monitor.db.models import StoreOwner
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.settings import get_settings
from store_monitor.sources import SourceError, read_owners
from store_monitor.synthetic import generate
from support.service import empty_postgres

HEADER = "owner_id,store_id\n"


def test_owners_are_read_as_exact_text() -> None:
    data = (HEADER + " brand-1 ,8419537941919820732\nbrand-1,00042\n\nfranchise,00042\n").encode()
    assert_frame_equal(
        read_owners(data),
        pl.DataFrame(
            {
                "owner_id": ["brand-1", "brand-1", "franchise"],
                "store_id": ["8419537941919820732", "00042", "00042"],
            },
            schema=frames.OWNERS,
        ),
    )


def test_columns_by_name_in_any_order() -> None:
    frame = read_owners(b"store_id,extra,owner_id\n7,x,acme\n")
    assert frame.rows() == [("acme", "7")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (HEADER + "acme,1\nacme,\n", "store_owners.csv, line 3, column 'store_id': empty value"),
        (HEADER + "  ,1\n", "store_owners.csv, line 2, column 'owner_id': empty value"),
        ("owner,store_id\nacme,1\n", "store_owners.csv: missing required column 'owner_id'"),
        (HEADER + "acme,1,extra\n", "store_owners.csv, line 2: 3 fields, but the header has 2"),
    ],
)
def test_bad_files_are_one_located_error(data: str, message: str) -> None:
    with pytest.raises(SourceError) as raised:
        read_owners(data.encode(), name=frames.OWNERS_FILE)
    assert str(raised.value) == message


def test_an_empty_file_is_zero_rows() -> None:
    assert read_owners(b"").height == 0
    assert read_owners(HEADER.encode()).height == 0


async def _memberships(url: str) -> set[tuple[str, str]]:
    engine = create_engine(url, process_name="store-monitor-tests")
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await session.execute(sa.select(StoreOwner.owner_id, StoreOwner.store_id))
            return {(owner, store) for owner, store in rows}
    finally:
        await engine.dispose()


async def test_cli_ingest_loads_the_owners_file_when_present(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await empty_postgres(postgres_url)
    generate(tmp_path, stores=3, days=1, seed=2)
    (tmp_path / frames.OWNERS_FILE).write_text(HEADER + "acme,1\nacme,2\n")
    monkeypatch.setenv("STORE_MONITOR_DATABASE_URL", postgres_url)
    get_settings.cache_clear()
    try:
        # The CLI runs its own event loop: in a thread, outside the test's.
        result = await asyncio.to_thread(
            CliRunner().invoke, app, ["ingest", "--data", str(tmp_path)]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "owners: 2 rows read, 2 stored, 2 stores" in result.stderr
    assert await _memberships(postgres_url) == {("acme", "1"), ("acme", "2")}
