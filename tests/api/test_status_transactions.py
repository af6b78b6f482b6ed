"""The status poll, the API's most frequent request, reads the key and the report as two
statements that commit alone: no BEGIN and COMMIT round trips. Other routes keep their one
transaction."""

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

from store_monitor.db.models import KeyScope
from support.service import bearer, create_key, empty_postgres, postgres_with_keys, serve


async def test_a_status_read_opens_no_transaction_and_a_list_opens_one(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await empty_postgres(postgres_url)
    admin = bearer(await create_key(postgres_url, "admin", scope=KeyScope.admin))
    begun: list[object] = []
    # What SQLAlchemy's asyncpg adapter calls to send BEGIN (it returns at once in autocommit).
    start: Callable[[AsyncAdapt_asyncpg_connection], Awaitable[None]] = (
        AsyncAdapt_asyncpg_connection._start_transaction
    )

    async def counted(connection: AsyncAdapt_asyncpg_connection) -> None:
        if connection.isolation_level != "autocommit":
            begun.append(connection)
        await start(connection)

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "_start_transaction", counted)
    async with serve(postgres_with_keys(postgres_url)) as client:
        client.headers.update(admin)
        report_id = (await client.post("/trigger_report")).json()["report_id"]
        for _ in range(2):  # the first notes the key's use, a write of its own
            begun.clear()
            read = await client.get(f"/reports/{report_id}")
            assert read.status_code == 200, read.text
            assert begun == []
        assert (await client.get("/reports")).status_code == 200
        assert len(begun) == 1
