"""The dashboard's Schedules page: linked from the reports list, lists each schedule's next fire
time in its zone and in UTC, creates and deletes with the session's CSRF token, says what is
wrong with a bad schedule, and is refused to owners' keys as the API's routes are."""

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from store_monitor.db.models import KeyScope
from support.service import (
    create_key,
    empty_postgres,
    postgres_mode,
    postgres_with_keys,
    serve,
)

from .conftest import csrf_token
from .test_sign_in import sign_in

_DELETE = re.compile(r'<form method="post" action="(/ui/schedules/[^"]+/delete)"')


@pytest.fixture
async def client(postgres_url: str) -> AsyncIterator[httpx.AsyncClient]:
    await empty_postgres(postgres_url)
    async with serve(postgres_mode(postgres_url)) as made:
        yield made


async def test_schedules_are_created_listed_and_deleted_from_the_page(
    client: httpx.AsyncClient,
) -> None:
    home = await client.get("/")
    assert 'href="/ui/schedules"' in home.text
    page = await client.get("/ui/schedules")
    assert page.status_code == 200
    assert "No schedules yet." in page.text
    assert page.headers["cache-control"] == "no-store"

    created = await client.post(
        "/ui/schedules",
        data={
            "cron": "0 6 * * 1",
            "timezone": "America/New_York",
            "csrf_token": csrf_token(page.text),
        },
    )
    assert created.status_code == 303
    assert created.headers["location"] == "/ui/schedules"
    listed = await client.get("/ui/schedules")
    assert "<code>0 6 * * 1</code>" in listed.text
    # Monday 06:00 in New York, in its zone's abbreviation, and the same instant in UTC.
    assert re.search(r'data-field="next-local">\d{4}-\d\d-\d\d 06:00 E[SD]T<', listed.text)
    assert re.search(r'data-field="next-utc">\d{4}-\d\d-\d\d 1[01]:00:00 UTC<', listed.text)
    assert (await client.get("/schedules")).json()["schedules"][0]["cron"] == "0 6 * * 1"

    [delete] = _DELETE.findall(listed.text)
    deleted = await client.post(delete, data={"csrf_token": csrf_token(listed.text)})
    assert deleted.status_code == 303
    assert (await client.get("/schedules")).json()["schedules"] == []
    again = await client.post(delete, data={"csrf_token": csrf_token(listed.text)})
    assert again.status_code == 404


async def test_a_bad_schedule_is_shown_with_what_is_wrong_and_kept_in_the_form(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/ui/schedules")
    token = csrf_token(page.text)

    bad_cron = await client.post(
        "/ui/schedules", data={"cron": "0 25 * * *", "timezone": "UTC", "csrf_token": token}
    )
    bad_zone = await client.post(
        "/ui/schedules", data={"cron": "0 6 * * *", "timezone": "Mars/Base", "csrf_token": token}
    )

    assert bad_cron.status_code == 422
    assert "Cron expression: Bad hour" in bad_cron.text
    assert 'value="0 25 * * *"' in bad_cron.text
    assert bad_zone.status_code == 422
    assert "Time zone: &#39;Mars/Base&#39; is not an IANA time zone name" in bad_zone.text
    assert (await client.get("/schedules")).json()["schedules"] == []


async def test_a_schedule_too_frequent_or_past_the_limit_is_refused_on_the_page(
    postgres_url: str,
) -> None:
    await empty_postgres(postgres_url)
    async with serve(postgres_mode(postgres_url, schedule_max_per_key=1)) as client:
        page = await client.get("/ui/schedules")
        token = csrf_token(page.text)
        assert "Fire times are at least 60 minutes apart." in page.text

        frequent = await client.post(
            "/ui/schedules", data={"cron": "*/5 * * * *", "csrf_token": token}
        )
        first = await client.post("/ui/schedules", data={"cron": "0 6 * * *", "csrf_token": token})
        second = await client.post("/ui/schedules", data={"cron": "0 7 * * *", "csrf_token": token})

        assert frequent.status_code == 422
        assert "fires as little as 5 minutes apart" in frequent.text
        assert 'value="*/5 * * * *"' in frequent.text
        assert first.status_code == 303
        assert second.status_code == 422
        assert "this key has 1 schedule already, the most it may have" in second.text
        assert 'value="0 7 * * *"' in second.text
        listed = (await client.get("/schedules")).json()["schedules"]
        assert [schedule["cron"] for schedule in listed] == ["0 6 * * *"]


async def test_forms_without_the_sessions_token_are_refused(client: httpx.AsyncClient) -> None:
    page = await client.get("/ui/schedules")
    refused = await client.post("/ui/schedules", data={"cron": "0 6 * * *"})
    assert refused.status_code == 403
    forged = await client.post("/ui/schedules", data={"cron": "0 6 * * *", "csrf_token": "x"})
    assert forged.status_code == 403
    assert (await client.get("/schedules")).json()["schedules"] == []

    await client.post(
        "/ui/schedules", data={"cron": "0 6 * * *", "csrf_token": csrf_token(page.text)}
    )
    [delete] = _DELETE.findall((await client.get("/ui/schedules")).text)
    assert (await client.post(delete)).status_code == 403
    assert len((await client.get("/schedules")).json()["schedules"]) == 1


async def test_an_owner_may_not_manage_schedules_an_admin_may(postgres_url: str) -> None:
    await empty_postgres(postgres_url)
    admin = await create_key(postgres_url, "admin-key", scope=KeyScope.admin)
    owner = await create_key(postgres_url, "owner-key", owner_id="brand")
    async with serve(postgres_with_keys(postgres_url)) as client:
        assert (await client.get("/ui/schedules")).status_code == 303  # sign in first

        assert (await sign_in(client, owner)).status_code == 303
        assert 'href="/ui/schedules"' not in (await client.get("/")).text
        refused = await client.get("/ui/schedules")
        assert refused.status_code == 403
        posted = await client.post(
            "/ui/schedules", data={"cron": "0 6 * * *", "csrf_token": csrf_token(refused.text)}
        )
        assert posted.status_code == 403

        home = await client.get("/")
        await client.post("/ui/sign-out", data={"csrf_token": csrf_token(home.text)})
        assert (await sign_in(client, admin)).status_code == 303
        page = await client.get("/ui/schedules")
        assert page.status_code == 200
        created = await client.post(
            "/ui/schedules", data={"cron": "0 6 * * *", "csrf_token": csrf_token(page.text)}
        )
        assert created.status_code == 303
        assert "<code>0 6 * * *</code>" in (await client.get("/ui/schedules")).text
