"""The webhook pages with keys required: subscribe (the secret shown once), the list and a
webhook's page with its attempts, a test sent through a real worker, enable a disabled one
again, delete; forms need the session's CSRF token; another key sees none of it."""

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from store_monitor import access
from store_monitor.db.models import KeyScope, WebhookSubscription
from support.service import (
    app_state,
    arq_worker,
    create_key,
    empty_postgres,
    postgres_with_keys,
    serve,
)
from support.webhooks import disable
from webhooks.receivers import receiver, respond

from .conftest import csrf_token
from .test_sign_in import sign_in

_WEBHOOK_LINK = re.compile(r'href="/ui/webhooks/([0-9a-f-]{36})"')
_SECRET = re.compile(r'<code id="webhook-secret">(whsec_[^<]+)</code>')


@pytest.fixture
async def signed_in(postgres_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client signed in with a reports key, on an app whose workers send webhooks to
    127.0.0.1; and another reports key's secret."""
    await empty_postgres(postgres_url)
    settings = postgres_with_keys(postgres_url, webhook_private_targets=True)
    mine = await create_key(postgres_url, "reports-key", scope=KeyScope.reports)
    other = await create_key(postgres_url, "other-key", scope=KeyScope.reports)
    async with arq_worker(settings), serve(settings) as client:
        assert (await sign_in(client, mine)).status_code == 303
        yield client, other


async def _subscribed(client: httpx.AsyncClient) -> tuple[str, str, str]:
    """A webhook made with the dashboard's form: the session's CSRF token, its id, the page."""
    token = csrf_token((await client.get("/ui/webhooks")).text)
    created = await client.post(
        "/ui/webhooks", data={"url": "http://127.0.0.1:9/hook", "csrf_token": token}
    )
    [webhook_id] = _WEBHOOK_LINK.findall(created.text)
    return token, webhook_id, created.text


async def _posted_by_another_key(client: httpx.AsyncClient, other: str, path: str) -> int:
    """The status of a form posted to `path` in a session signed in with the key `other`."""
    async with httpx.AsyncClient(transport=client._transport, base_url=client.base_url) as second:
        assert (await sign_in(second, other)).status_code == 303
        theirs = csrf_token((await second.get("/ui/webhooks")).text)
        return (await second.post(path, data={"csrf_token": theirs})).status_code


async def test_subscribe_test_and_delete_from_the_dashboard(
    signed_in: tuple[httpx.AsyncClient, str],
) -> None:
    client, other = signed_in
    async with receiver(respond(204)) as hook:
        listing = await client.get("/ui/webhooks")
        assert listing.status_code == 200
        assert "No webhooks yet." in listing.text
        token = csrf_token(listing.text)

        forged = await client.post("/ui/webhooks", data={"url": hook.url(), "csrf_token": "x"})
        assert forged.status_code == 403
        refused = await client.post(
            "/ui/webhooks", data={"url": "ftp://example.com/", "csrf_token": token}
        )
        assert refused.status_code == 400
        assert "the URL must start with" in refused.text

        created = await client.post(
            "/ui/webhooks",
            data={"url": hook.url(), "events": ["report.failed"], "csrf_token": token},
        )
        assert created.status_code == 201
        secret = _SECRET.search(created.text)
        assert secret is not None
        [webhook_id] = _WEBHOOK_LINK.findall(created.text)
        # Shown once: not on the list, nor on the webhook's page.
        assert secret[1] not in (await client.get("/ui/webhooks")).text
        page = await client.get(f"/ui/webhooks/{webhook_id}")
        assert page.status_code == 200
        assert secret[1] not in page.text
        assert "Nothing sent yet." in page.text

        sent = await client.post(f"/ui/webhooks/{webhook_id}/test", data={"csrf_token": token})
        assert sent.status_code == 303
        async with asyncio.timeout(20):
            while "webhook.test" not in (page := await client.get(sent.headers["location"])).text:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert ">204<" in page.text
        assert len(hook.requests) == 1

    async with httpx.AsyncClient(transport=client._transport, base_url=client.base_url) as second:
        assert (await sign_in(second, other)).status_code == 303
        assert webhook_id not in (await second.get("/ui/webhooks")).text
        assert (await second.get(f"/ui/webhooks/{webhook_id}")).status_code == 404
        theirs = csrf_token((await second.get("/ui/webhooks")).text)
        denied = await second.post(f"/ui/webhooks/{webhook_id}/delete", data={"csrf_token": theirs})
        assert denied.status_code == 404

    assert (
        await client.post(f"/ui/webhooks/{webhook_id}/delete", data={"csrf_token": "x"})
    ).status_code == 403
    deleted = await client.post(f"/ui/webhooks/{webhook_id}/delete", data={"csrf_token": token})
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/ui/webhooks"
    assert (await client.get(f"/ui/webhooks/{webhook_id}")).status_code == 404


async def test_a_disabled_webhook_is_enabled_again_from_the_dashboard(
    signed_in: tuple[httpx.AsyncClient, str],
) -> None:
    client, other = signed_in
    token, webhook_id, created = await _subscribed(client)
    enable = f"/ui/webhooks/{webhook_id}/enable"
    assert f'action="{enable}"' not in created
    await disable(app_state(client).sessionmaker, webhook_id)
    assert f'action="{enable}"' in (await client.get("/ui/webhooks")).text
    page = (await client.get(f"/ui/webhooks/{webhook_id}")).text
    assert 'id="enable-webhook"' in page
    assert "disabled since" in page

    assert (await client.post(enable, data={"csrf_token": "x"})).status_code == 403
    assert await _posted_by_another_key(client, other, enable) == 404
    enabled = await client.post(enable, data={"csrf_token": token})
    assert enabled.status_code == 303
    assert enabled.headers["location"] == f"/ui/webhooks/{webhook_id}"
    page = (await client.get(enabled.headers["location"])).text
    assert '<dd id="webhook-state">enabled</dd>' in page
    assert 'id="enable-webhook"' not in page


async def test_the_secret_is_rotated_from_the_dashboard_and_shown_once(
    signed_in: tuple[httpx.AsyncClient, str],
) -> None:
    client, other = signed_in
    token, webhook_id, created = await _subscribed(client)
    old = _SECRET.search(created)
    rotate = f"/ui/webhooks/{webhook_id}/rotate-secret"
    page = (await client.get(f"/ui/webhooks/{webhook_id}")).text
    assert f'action="{rotate}"' in page
    assert 'id="previous-secret"' not in page

    assert (await client.post(rotate, data={"csrf_token": "x"})).status_code == 403
    assert await _posted_by_another_key(client, other, rotate) == 404
    rotated = await client.post(rotate, data={"csrf_token": token})
    assert rotated.status_code == 200
    new = _SECRET.search(rotated.text)
    assert old is not None
    assert new is not None
    assert new[1] != old[1]
    assert "with the previous one too until" in rotated.text
    page = (await client.get(f"/ui/webhooks/{webhook_id}")).text
    assert new[1] not in page
    assert 'id="previous-secret"' in page
    # Once its day is over, the page no longer speaks of the previous secret.
    async with app_state(client).sessionmaker.begin() as session:
        await session.execute(
            sa.update(WebhookSubscription).values(
                previous_secret_until=sa.func.now() - timedelta(seconds=1)
            )
        )
    assert 'id="previous-secret"' not in (await client.get(f"/ui/webhooks/{webhook_id}")).text

    ended = await client.post(rotate, data={"csrf_token": token, "end_previous_now": "true"})
    assert ended.status_code == 200
    assert "with the previous one too" not in ended.text
    assert 'id="previous-secret"' not in (await client.get(f"/ui/webhooks/{webhook_id}")).text


async def test_the_url_and_events_are_changed_from_the_dashboard(
    signed_in: tuple[httpx.AsyncClient, str],
) -> None:
    client, other = signed_in
    token, webhook_id, _ = await _subscribed(client)
    edit = f"/ui/webhooks/{webhook_id}/edit"
    page = (await client.get(f"/ui/webhooks/{webhook_id}")).text
    assert 'value="http://127.0.0.1:9/hook"' in page
    assert page.count(" checked>") == 4  # subscribed to every type

    assert (await client.post(edit, data={"csrf_token": "x"})).status_code == 403
    assert await _posted_by_another_key(client, other, edit) == 404
    refused = await client.post(edit, data={"csrf_token": token, "url": "ftp://example.com/"})
    assert refused.status_code == 400
    assert 'id="webhook-problem"' in refused.text
    assert 'value="ftp://example.com/"' in refused.text  # what was typed, to correct it

    changed = await client.post(
        edit,
        data={
            "csrf_token": token,
            "url": "http://127.0.0.1:9/elsewhere",
            "events": ["report.failed", "incident.opened"],
        },
    )
    assert changed.status_code == 303
    assert changed.headers["location"] == f"/ui/webhooks/{webhook_id}"
    page = (await client.get(changed.headers["location"])).text
    assert "<code>http://127.0.0.1:9/elsewhere</code>" in page
    assert "<dd>incident.opened, report.failed</dd>" in page


async def test_a_webhook_of_a_revoked_key_is_not_enabled_again(
    signed_in: tuple[httpx.AsyncClient, str], postgres_url: str
) -> None:
    client, _ = signed_in
    _, webhook_id, _ = await _subscribed(client)
    admin = await create_key(postgres_url, "admin-key", scope=KeyScope.admin)
    async with app_state(client).sessionmaker.begin() as session:
        await access.revoke_key(session, "reports-key", now=datetime.now(UTC))

    async with httpx.AsyncClient(transport=client._transport, base_url=client.base_url) as second:
        assert (await sign_in(second, admin)).status_code == 303
        page = (await second.get(f"/ui/webhooks/{webhook_id}")).text
        assert "its API key was revoked" in page
        refused = await second.post(
            f"/ui/webhooks/{webhook_id}/enable", data={"csrf_token": csrf_token(page)}
        )
        assert refused.status_code == 409
        assert "which is revoked or has expired" in refused.text
        assert "its API key was revoked" in (await second.get(f"/ui/webhooks/{webhook_id}")).text


async def test_the_webhook_pages_need_a_signed_in_key(postgres_url: str) -> None:
    await empty_postgres(postgres_url)
    async with serve(postgres_with_keys(postgres_url)) as client:
        response = await client.get("/ui/webhooks")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/ui/sign-in?next=")


async def test_the_test_button_is_held_to_the_keys_rate(postgres_url: str) -> None:
    await empty_postgres(postgres_url)
    settings = postgres_with_keys(
        postgres_url, webhook_private_targets=True, webhook_test_rate="1/minute"
    )
    key = await create_key(postgres_url, "reports-key", scope=KeyScope.reports)
    async with serve(settings) as client:
        assert (await sign_in(client, key)).status_code == 303
        token = csrf_token((await client.get("/ui/webhooks")).text)
        created = await client.post(
            "/ui/webhooks", data={"url": "http://127.0.0.1:9/hook", "csrf_token": token}
        )
        [webhook_id] = _WEBHOOK_LINK.findall(created.text)
        test = f"/ui/webhooks/{webhook_id}/test"

        first = await client.post(test, data={"csrf_token": token})
        second = await client.post(test, data={"csrf_token": token})

    assert first.status_code == 303
    assert second.status_code == 429
    assert "This key sent too many test events. Try again in" in second.text
    assert 1 <= int(second.headers["Retry-After"]) <= 60
