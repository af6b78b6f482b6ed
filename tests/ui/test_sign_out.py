"""Signing out ends the session on the server: a copy of the cookie saved before opens nothing
after; signing out everywhere (from the dashboard, or `store-monitor keys sign-out`) ends every
session of the key, in every browser, and leaves the key and other keys' sessions alone."""

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from store_monitor.cli import app
from store_monitor.db.models import DashboardSession
from store_monitor.db.session import create_engine
from store_monitor.settings import get_settings
from store_monitor.ui.sessions import COOKIE_NAME
from support.service import SECRET_KEY, bearer

from .conftest import csrf_token
from .test_sign_in import Keyed, sign_in


async def signed_in_cookie(client: httpx.AsyncClient, key: str) -> str:
    """A fresh browser's sign-in with `key`: its session cookie."""
    client.cookies.clear()
    assert (await sign_in(client, key)).status_code == 303
    return client.cookies[COOKIE_NAME]


async def opens(client: httpx.AsyncClient, cookie: str, path: str = "/") -> bool:
    """Whether `cookie`, replayed, opens `path` (else it is sent to sign in)."""
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, cookie)
    response = await client.get(path)
    if response.status_code == 303:
        assert response.headers["location"].startswith("/ui/sign-in")
        return False
    assert response.status_code == 200, response.text
    return True


async def post_form(client: httpx.AsyncClient, cookie: str, path: str) -> httpx.Response:
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, cookie)
    page = await client.get("/")
    return await client.post(path, data={"csrf_token": csrf_token(page.text)})


async def test_a_cookie_saved_before_sign_out_opens_nothing_after(keyed: Keyed) -> None:
    client, keys, report_id = keyed
    saved = await signed_in_cookie(client, keys["admin"])
    csv = f"/ui/reports/{report_id}/files/report.csv"
    assert await opens(client, saved)
    assert await opens(client, saved, csv)

    out = await post_form(client, saved, "/ui/sign-out")
    assert out.status_code == 303
    assert out.headers["location"] == "/ui/sign-in"

    assert not await opens(client, saved)
    assert not await opens(client, saved, csv)
    # The key itself is still good, for the API and for a new sign-in.
    assert (await client.get("/reports", headers=bearer(keys["admin"]))).status_code == 200
    assert await opens(client, await signed_in_cookie(client, keys["admin"]))


async def test_sign_out_everywhere_ends_every_browser_of_the_key(keyed: Keyed) -> None:
    client, keys, _ = keyed
    laptop = await signed_in_cookie(client, keys["admin"])
    phone = await signed_in_cookie(client, keys["admin"])
    owner = await signed_in_cookie(client, keys["owner"])
    assert await opens(client, laptop)

    page = await client.get("/")
    assert 'action="/ui/sign-out-everywhere"' in page.text
    out = await post_form(client, phone, "/ui/sign-out-everywhere")
    assert out.status_code == 303
    assert out.headers["location"] == "/ui/sign-in"

    assert not await opens(client, laptop)
    assert not await opens(client, phone)
    assert await opens(client, owner)  # another key's session
    assert (await client.get("/reports", headers=bearer(keys["admin"]))).status_code == 200


async def test_sign_out_needs_the_pages_token(keyed: Keyed) -> None:
    client, keys, _ = keyed
    saved = await signed_in_cookie(client, keys["admin"])
    for path in ("/ui/sign-out", "/ui/sign-out-everywhere"):
        refused = await client.post(path, data={"csrf_token": "forged"})
        assert refused.status_code == 403
    assert await opens(client, saved)


async def test_an_expired_session_on_the_server_opens_nothing(
    keyed: Keyed, postgres_url: str
) -> None:
    client, keys, _ = keyed
    saved = await signed_in_cookie(client, keys["admin"])
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    try:
        async with engine.begin() as connection:
            await connection.execute(
                sa.update(DashboardSession).values(
                    expires_at=datetime.now(UTC) - timedelta(seconds=1)
                )
            )
        assert not await opens(client, saved)
        # The next sign-in clears the expired rows away.
        await signed_in_cookie(client, keys["owner"])
        async with engine.connect() as connection:
            left = await connection.scalar(sa.select(sa.func.count()).select_from(DashboardSession))
        assert left == 1
    finally:
        await engine.dispose()


async def test_an_admin_ends_a_keys_sessions_from_the_command_line(
    keyed: Keyed, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, keys, _ = keyed
    first = await signed_in_cookie(client, keys["owner"])
    second = await signed_in_cookie(client, keys["owner"])
    admin = await signed_in_cookie(client, keys["admin"])
    monkeypatch.setenv("STORE_MONITOR_DATABASE_URL", postgres_url)
    monkeypatch.setenv("STORE_MONITOR_SECRET_KEY", SECRET_KEY)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        ended = await asyncio.to_thread(runner.invoke, app, ["keys", "sign-out", "owner-key"])
        missing = await asyncio.to_thread(runner.invoke, app, ["keys", "sign-out", "nobody"])
    finally:
        get_settings.cache_clear()
    assert ended.exit_code == 0, ended.output
    assert "key 'owner-key': 2 dashboard sessions ended" in ended.stderr
    assert missing.exit_code == 2
    assert missing.stderr.strip() == "error: no API key named 'nobody'"
    assert not await opens(client, first)
    assert not await opens(client, second)
    assert await opens(client, admin)


async def test_signing_in_again_ends_the_session_it_replaces(keyed: Keyed) -> None:
    client, keys, _ = keyed
    first = await signed_in_cookie(client, keys["admin"])
    assert await opens(client, first)
    page = await client.get("/")
    again = await client.post(
        "/ui/sign-in", data={"key": keys["owner"], "csrf_token": csrf_token(page.text)}
    )
    assert again.status_code == 303
    second = again.cookies[COOKIE_NAME]
    assert not await opens(client, first)
    assert await opens(client, second)
