"""The dashboard with keys required: sign in with a key (a signed, expiring, HttpOnly,
SameSite=Strict cookie that holds no secret), owners see only their stores, revocation ends a
session."""

import re
from datetime import UTC, datetime

import httpx
import sqlalchemy as sa

from store_monitor.db.models import ApiKey
from store_monitor.db.session import create_engine

from .conftest import csrf_token

Keyed = tuple[httpx.AsyncClient, dict[str, str], str]
_STORE_LINK = re.compile(r'<th scope="row"><a href="/ui/reports/[^"]+/stores/([^"]+)">')


async def sign_in(client: httpx.AsyncClient, key: str, *, next: str = "") -> httpx.Response:
    page = await client.get("/ui/sign-in")
    assert page.status_code == 200
    return await client.post(
        "/ui/sign-in", data={"key": key, "next": next, "csrf_token": csrf_token(page.text)}
    )


async def test_pages_need_a_session(keyed: Keyed) -> None:
    client, _, report_id = keyed
    for path in ("/", f"/ui/reports/{report_id}", f"/ui/reports/{report_id}/files/report.csv"):
        response = await client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/ui/sign-in?next=")


async def test_the_pages_script_is_told_the_session_ended(keyed: Keyed) -> None:
    client, _, report_id = keyed
    response = await client.get(
        f"/ui/reports/{report_id}/status.json", headers={"Accept": "application/json"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "sign_in_required"


async def test_bad_and_unfit_keys_are_refused(keyed: Keyed) -> None:
    client, keys, _ = keyed
    assert (await sign_in(client, "sm_not-a-key")).status_code == 401
    assert (await sign_in(client, keys["ingest"])).status_code == 403
    # No token: refused before the key is even looked at.
    refused = await client.post("/ui/sign-in", data={"key": keys["admin"]})
    assert refused.status_code == 403
    assert (await client.get("/")).status_code == 303


async def test_an_admin_signs_in_and_out(keyed: Keyed) -> None:
    client, keys, report_id = keyed
    signed = await sign_in(client, keys["admin"], next=f"/ui/reports/{report_id}")
    assert signed.status_code == 303
    assert signed.headers["location"] == f"/ui/reports/{report_id}"
    cookie = signed.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=strict", "Max-Age=28800", "Path=/"):
        assert attribute in cookie
    assert keys["admin"] not in cookie
    page = await client.get(f"/ui/reports/{report_id}")
    assert page.status_code == 200
    assert len(_STORE_LINK.findall(page.text)) == 50

    out = await client.post("/ui/sign-out", data={"csrf_token": csrf_token(page.text)})
    assert out.status_code == 303
    assert (await client.get("/")).status_code == 303

    # Another site's address as `next` is not followed.
    elsewhere = await sign_in(client, keys["admin"], next="//evil.example/")
    assert elsewhere.headers["location"] == "/"


async def test_an_owner_sees_only_their_stores(keyed: Keyed) -> None:
    client, keys, report_id = keyed
    assert (await sign_in(client, keys["owner"])).status_code == 303
    page = await client.get(f"/ui/reports/{report_id}", params={"sort": "store_id"})
    assert _STORE_LINK.findall(page.text) == keys["owned"].split(",")
    # The summary is of the owner's three stores, not of every store of the report.
    assert re.search(r'Stores with downtime</th><td class="num">\d of 3<', page.text)
    own = keys["owned"].split(",")[0]
    assert (await client.get(f"/ui/reports/{report_id}/stores/{own}")).status_code == 200
    foreign = await client.get(f"/ui/reports/{report_id}/stores/{keys['foreign']}")
    assert foreign.status_code == 404
    download = await client.get(f"/ui/reports/{report_id}/files/report.csv")
    assert [line.split(",")[0] for line in download.text.splitlines()[1:]] == keys["owned"].split(
        ","
    )
    for kind in ("incidents", "daily"):
        lines = (await client.get(f"/ui/reports/{report_id}/files/{kind}.csv")).text.splitlines()
        assert {line.split(",")[0] for line in lines[1:]} <= set(keys["owned"].split(","))


async def test_revoking_the_key_ends_the_session(keyed: Keyed, postgres_url: str) -> None:
    client, keys, _ = keyed
    await sign_in(client, keys["owner"])
    assert (await client.get("/")).status_code == 200
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    try:
        async with engine.begin() as connection:
            await connection.execute(
                sa.update(ApiKey)
                .where(ApiKey.name == "owner-key")
                .values(revoked_at=datetime.now(UTC))
            )
    finally:
        await engine.dispose()
    assert (await client.get("/")).status_code == 303


async def test_a_forged_cookie_is_no_session(keyed: Keyed) -> None:
    client, keys, _ = keyed
    await sign_in(client, keys["admin"])
    value = client.cookies["store_monitor_session"]
    client.cookies.set(
        "store_monitor_session", value[:-3] + ("AAA" if value[-3:] != "AAA" else "BBB")
    )
    assert (await client.get("/")).status_code == 303


async def test_sign_in_and_the_api_share_one_limiter(keyed: Keyed) -> None:
    """Failed keys count against the client's address wherever they are tried: after the API's
    limit of failures, even a valid key's sign-in waits."""
    client, keys, _ = keyed
    failures = 0
    while (
        await client.get("/reports", headers={"Authorization": "Bearer sm_x"})
    ).status_code == 401:
        failures += 1
        assert failures < 100
    refused = await sign_in(client, keys["admin"])
    assert refused.status_code == 429
    assert "Too many failed attempts: try again in" in refused.text
    assert (await client.get("/")).status_code == 303
