"""The webhook routes on Postgres with keys required: subscribe (the secret once), list, read,
delete; each key sees only its own (admin all); unsafe URLs and too many subscriptions refused;
a test event delivered through a real worker to a loopback receiver, and its attempts listed."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook

from store_monitor import access
from store_monitor.db.models import KeyScope, ReportStatus, WebhookDelivery, WebhookSubscription
from store_monitor.settings import Settings
from support.service import (
    app_state,
    arq_worker,
    bearer,
    create_key,
    empty_postgres,
    postgres_with_keys,
    serve,
)
from support.webhooks import disable
from webhooks.receivers import in_turn, receiver, respond

ALL_EVENTS = ["incident.closed", "incident.opened", "report.completed", "report.failed"]


@pytest.fixture
async def settings(postgres_url: str) -> Settings:
    await empty_postgres(postgres_url)
    return postgres_with_keys(
        postgres_url,
        webhook_private_targets=True,
        webhook_max_subscriptions=3,
        webhook_retry_base_seconds=0.1,
    )


@pytest.fixture
async def keys(postgres_url: str, settings: Settings) -> dict[str, dict[str, str]]:
    made = {
        "admin": await create_key(postgres_url, "admin-key", scope=KeyScope.admin),
        "reports": await create_key(postgres_url, "reports-key", scope=KeyScope.reports),
        "other": await create_key(postgres_url, "other-reports-key", scope=KeyScope.reports),
        "owner": await create_key(postgres_url, "brand-key", owner_id="brand"),
        "ingest": await create_key(postgres_url, "ingest-key", scope=KeyScope.ingest),
    }
    return {name: bearer(secret) for name, secret in made.items()}


@pytest.fixture
async def client(settings: Settings, keys: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings) as client:
        yield client


async def _subscribe(client: httpx.AsyncClient, key: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/webhooks", json={"url": "http://127.0.0.1:9/hook", **body}, headers=key
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_subscribe_then_list_read_and_delete_without_the_secret(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    created = await _subscribe(client, keys["reports"], store_ids=["2", "1", "2"])
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ALL_EVENTS
    assert created["store_ids"] == ["1", "2"]
    assert created["enabled"] is True
    assert created["disabled_at"] is None

    listed = (await client.get("/webhooks", headers=keys["reports"])).json()["webhooks"]
    read = (await client.get(f"/webhooks/{created['id']}", headers=keys["reports"])).json()
    without_secret = {k: v for k, v in created.items() if k != "secret"}
    assert listed == [without_secret]
    assert read == without_secret
    assert created["secret"] not in json.dumps(listed)

    deleted = await client.delete(f"/webhooks/{created['id']}", headers=keys["reports"])
    assert deleted.status_code == 204
    gone = await client.get(f"/webhooks/{created['id']}", headers=keys["reports"])
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "webhook_not_found"


async def test_a_key_sees_and_deletes_only_its_own_and_admin_sees_all(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    mine = await _subscribe(client, keys["reports"])
    owners = await _subscribe(client, keys["owner"], events=["incident.opened"])
    path = f"/webhooks/{mine['id']}"

    for other in ("other", "owner"):
        assert (await client.get(path, headers=keys[other])).status_code == 404
        assert (await client.delete(path, headers=keys[other])).status_code == 404
        assert (await client.get(f"{path}/deliveries", headers=keys[other])).status_code == 404
        assert (await client.post(f"{path}/test", headers=keys[other])).status_code == 404
    owner_list = (await client.get("/webhooks", headers=keys["owner"])).json()["webhooks"]
    assert [w["id"] for w in owner_list] == [owners["id"]]
    admin_list = (await client.get("/webhooks", headers=keys["admin"])).json()["webhooks"]
    assert {w["id"] for w in admin_list} == {mine["id"], owners["id"]}
    assert (await client.get("/webhooks", headers=keys["ingest"])).status_code == 403
    assert (await client.get("/webhooks")).status_code == 401
    assert (await client.delete(path, headers=keys["admin"])).status_code == 204


async def test_an_owner_keys_subscription_is_narrowed_to_its_stores(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    created = await _subscribe(client, keys["owner"])
    async with app_state(client).sessionmaker() as session:
        stored = await session.get(WebhookSubscription, uuid.UUID(created["id"]))
    assert stored is not None
    assert (stored.owner_id, stored.key_name) == ("brand", "brand-key")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example.com/", "the URL must start with https:// or http://"),
        ("http://user:pw@hooks.example.com/", "may not carry credentials"),
        ("not a url", "the URL must start with"),
    ],
)
async def test_a_url_webhooks_may_not_go_to_is_422(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]], url: str, message: str
) -> None:
    response = await client.post("/webhooks", json={"url": url}, headers=keys["reports"])
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert message in response.json()["error"]["message"]


async def test_private_targets_are_refused_unless_allowed(
    postgres_url: str, settings: Settings, keys: dict[str, dict[str, str]]
) -> None:
    strict = settings.model_copy(update={"webhook_private_targets": False})
    async with serve(strict) as client:
        for url in ("http://hooks.example.com/", "https://127.0.0.1/", "https://10.1.2.3/"):
            response = await client.post("/webhooks", json={"url": url}, headers=keys["reports"])
            assert response.status_code == 422, url
        allowed = await client.post(
            "/webhooks", json={"url": "https://hooks.example.com/"}, headers=keys["reports"]
        )
        assert allowed.status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://127.0.0.1:9/", "events": ["store.deleted"]},
        {"url": "http://127.0.0.1:9/", "events": []},
        {"url": "http://127.0.0.1:9/", "store_ids": []},
        {"url": "http://127.0.0.1:9/", "secret": "mine"},
        {"url": ""},
        {},
    ],
)
async def test_a_malformed_subscription_is_422(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]], body: dict[str, Any]
) -> None:
    response = await client.post("/webhooks", json=body, headers=keys["reports"])
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


async def test_a_key_may_have_only_so_many_subscriptions(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    for _ in range(3):
        await _subscribe(client, keys["reports"])
    refused = await client.post(
        "/webhooks", json={"url": "http://127.0.0.1:9/"}, headers=keys["reports"]
    )
    assert refused.status_code == 409
    assert refused.json()["error"] == {
        "code": "too_many_webhooks",
        "message": "this key has 3 webhooks already, the most it may have; delete one first",
        "details": {"limit": 3},
    }
    # Another key's count is its own.
    await _subscribe(client, keys["other"])


async def test_ids_and_cursors_that_are_not_ours_are_422(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    created = await _subscribe(client, keys["reports"])
    assert (await client.get("/webhooks/nope", headers=keys["reports"])).status_code == 422
    for cursor in ("abc", "-1", "9" * 30):
        response = await client.get(
            f"/webhooks/{created['id']}/deliveries",
            params={"cursor": cursor},
            headers=keys["reports"],
        )
        assert response.status_code == 422, cursor


async def test_a_test_event_is_delivered_signed_and_its_attempts_listed(
    client: httpx.AsyncClient, settings: Settings, keys: dict[str, dict[str, str]]
) -> None:
    async with (
        receiver(in_turn(respond(503), respond(204))) as hook,
        arq_worker(settings),
    ):
        created = await _subscribe(client, keys["reports"], url=hook.url())
        sent = await client.post(f"/webhooks/{created['id']}/test", headers=keys["reports"])
        assert sent.status_code == 202
        async with asyncio.timeout(20):
            while len(hook.requests) < 2:  # noqa: ASYNC110 (the receiver's list)
                await asyncio.sleep(0.05)
            path = f"/webhooks/{created['id']}/deliveries"
            while len((await client.get(path, headers=keys["reports"])).json()["attempts"]) < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    first, second = hook.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    body = Webhook(created["secret"]).verify(second.body, second.headers)
    assert body["type"] == "webhook.test"
    assert body["data"] == {"webhook_id": created["id"]}

    page = (await client.get(path, params={"limit": 1}, headers=keys["reports"])).json()
    [newest] = page["attempts"]
    assert (newest["attempt"], newest["status_code"], newest["error"]) == (2, 204, None)
    assert newest["webhook_id"] == second.headers["webhook-id"]
    assert newest["event_type"] == "webhook.test"
    rest = await client.get(
        path, params={"limit": 1, "cursor": page["next_cursor"]}, headers=keys["reports"]
    )
    [oldest] = rest.json()["attempts"]
    assert (oldest["attempt"], oldest["status_code"]) == (1, 503)
    assert rest.json()["next_cursor"] is None


async def test_a_key_may_send_only_so_many_test_events(
    settings: Settings, keys: dict[str, dict[str, str]]
) -> None:
    async with serve(settings.model_copy(update={"webhook_test_rate": "2/minute"})) as client:
        mine = await _subscribe(client, keys["reports"])
        theirs = await _subscribe(client, keys["other"])
        sent = [
            await client.post(f"/webhooks/{mine['id']}/test", headers=keys["reports"])
            for _ in range(3)
        ]
        other_key = await client.post(f"/webhooks/{theirs['id']}/test", headers=keys["other"])
        async with app_state(client).sessionmaker() as session:
            deliveries = await session.scalar(
                sa.select(sa.func.count()).select_from(WebhookDelivery)
            )

    assert [response.status_code for response in sent] == [202, 202, 429]
    refused = sent[-1]
    assert refused.json()["error"]["code"] == "too_many_webhook_tests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert other_key.status_code == 202
    assert deliveries == 3  # none for the refused test


async def test_its_key_changes_the_url_events_and_stores_keeping_the_rest(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    created = await _subscribe(client, keys["reports"], store_ids=["s1"])
    path = f"/webhooks/{created['id']}"
    for other in ("other", "owner"):
        refused = await client.patch(path, json={"events": ["report.failed"]}, headers=keys[other])
        assert refused.status_code == 404
    patched = await client.patch(path, json={"events": ["report.failed"]}, headers=keys["ingest"])
    assert patched.status_code == 403

    # Only what the body names changes.
    narrowed = await client.patch(
        path, json={"events": ["report.failed", "report.failed"]}, headers=keys["reports"]
    )
    assert narrowed.status_code == 200, narrowed.text
    kept = {name: value for name, value in created.items() if name != "secret"}
    assert narrowed.json() == {**kept, "events": ["report.failed"]}
    moved = await client.patch(
        path,
        json={"url": "http://127.0.0.1:9/elsewhere", "store_ids": None},
        headers=keys["reports"],
    )
    assert moved.json() == {
        **kept,
        "events": ["report.failed"],
        "url": "http://127.0.0.1:9/elsewhere",
        "store_ids": None,
    }
    # null events: every type again; an empty body changes nothing.
    everything = await client.patch(path, json={"events": None}, headers=keys["admin"])
    assert everything.json()["events"] == ALL_EVENTS
    assert (await client.patch(path, json={}, headers=keys["reports"])).json() == everything.json()

    for body, location in (
        ({"url": "ftp://example.com/"}, "body.url"),
        ({"events": []}, "body.events"),
        ({"events": ["incident.reopened"]}, "body.events.0"),
        ({"secret": "whsec_mine"}, "body.secret"),
    ):
        bad = await client.patch(path, json=body, headers=keys["reports"])
        assert bad.status_code == 422, body
        errors = bad.json()["error"]["details"]["errors"]
        assert errors[0]["location"] == location, errors
    assert (await client.get(path, headers=keys["reports"])).json() == everything.json()
    missing = await client.patch(f"/webhooks/{uuid.uuid4()}", json={}, headers=keys["admin"])
    assert missing.json()["error"]["code"] == "webhook_not_found"


async def test_its_key_rotates_the_secret_keeping_the_previous_one_for_a_while(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    created = await _subscribe(client, keys["reports"])
    path = f"/webhooks/{created['id']}"
    assert created["previous_secret_until"] is None
    for other in ("other", "owner"):
        assert (await client.post(f"{path}/rotate-secret", headers=keys[other])).status_code == 404
    assert (await client.post(f"{path}/rotate-secret", headers=keys["ingest"])).status_code == 403
    too_long = await client.post(
        f"{path}/rotate-secret", json={"keep_previous_hours": 169}, headers=keys["reports"]
    )
    assert too_long.status_code == 422
    assert too_long.json()["error"]["details"]["errors"][0]["location"] == (
        "body.keep_previous_hours"
    )

    before = datetime.now(UTC)
    rotated = await client.post(f"{path}/rotate-secret", headers=keys["reports"])
    assert rotated.status_code == 200, rotated.text
    shown = rotated.json()
    assert shown["secret"].startswith("whsec_")
    assert shown["secret"] != created["secret"]
    until = datetime.fromisoformat(shown["previous_secret_until"])
    assert timedelta(hours=23, minutes=59) < until - before < timedelta(hours=24, minutes=1)
    read = (await client.get(path, headers=keys["reports"])).json()
    assert "secret" not in read
    assert read == {name: value for name, value in shown.items() if name != "secret"}
    async with app_state(client).sessionmaker() as session:
        stored = await session.get_one(WebhookSubscription, uuid.UUID(created["id"]))
    assert (stored.secret, stored.previous_secret) == (shown["secret"], created["secret"])

    # After a leak: the previous secret ends at once; an admin key may rotate it too.
    ended = await client.post(
        f"{path}/rotate-secret", json={"keep_previous_hours": 0}, headers=keys["admin"]
    )
    assert ended.status_code == 200, ended.text
    assert ended.json()["previous_secret_until"] is None
    missing = await client.post(f"/webhooks/{uuid.uuid4()}/rotate-secret", headers=keys["admin"])
    assert missing.json()["error"]["code"] == "webhook_not_found"


async def test_revoking_a_key_disables_its_webhooks_saying_why(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    mine = await _subscribe(client, keys["reports"])
    theirs = await _subscribe(client, keys["other"])
    async with app_state(client).sessionmaker.begin() as session:
        await access.revoke_key(session, "reports-key", now=datetime.now(UTC))

    revoked = (await client.get(f"/webhooks/{mine['id']}", headers=keys["admin"])).json()
    other = (await client.get(f"/webhooks/{theirs['id']}", headers=keys["admin"])).json()
    assert (revoked["enabled"], revoked["disabled_reason"]) == (False, "its API key was revoked")
    assert revoked["disabled_at"] is not None
    assert other["enabled"] is True
    # Nothing would be sent for the revoked key: not even an admin enables its webhook again.
    refused = await client.post(f"/webhooks/{mine['id']}/enable", headers=keys["admin"])
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "webhook_key_ended"
    assert "'reports-key', which is revoked or has expired" in refused.json()["error"]["message"]
    still = (await client.get(f"/webhooks/{mine['id']}", headers=keys["admin"])).json()
    assert still == revoked


async def test_a_disabled_subscription_says_so_and_since_when(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    created = await _subscribe(client, keys["reports"])
    await disable(app_state(client).sessionmaker, created["id"])
    read = (await client.get(f"/webhooks/{created['id']}", headers=keys["reports"])).json()
    assert read["enabled"] is False
    assert read["disabled_at"] is not None
    assert read["disabled_reason"].startswith("every delivery attempt failed since ")
    assert read["failing_since"] is not None


async def test_its_key_enables_a_disabled_subscription_again(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    created = await _subscribe(client, keys["reports"])
    path = f"/webhooks/{created['id']}"
    await disable(app_state(client).sessionmaker, created["id"])

    for other in ("other", "owner"):
        assert (await client.post(f"{path}/enable", headers=keys[other])).status_code == 404
    assert (await client.post(f"{path}/enable", headers=keys["ingest"])).status_code == 403
    assert (await client.post(f"{path}/enable")).status_code == 401
    assert (await client.get(path, headers=keys["reports"])).json()["enabled"] is False

    enabled = await client.post(f"{path}/enable", headers=keys["reports"])
    assert enabled.status_code == 200, enabled.text
    unchanged = {name: value for name, value in created.items() if name != "secret"}
    assert enabled.json() == {
        **unchanged,
        "enabled": True,
        "disabled_at": None,
        "disabled_reason": None,
        "failing_since": None,
    }
    assert (await client.get(path, headers=keys["reports"])).json() == enabled.json()
    # Enabling an enabled webhook changes nothing; an admin key may do it too.
    again = await client.post(f"{path}/enable", headers=keys["admin"])
    assert again.json() == enabled.json()
    missing = await client.post(f"/webhooks/{uuid.uuid4()}/enable", headers=keys["reports"])
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "webhook_not_found"


async def test_a_webhook_enabled_again_gets_new_events_and_not_what_it_missed(
    settings: Settings, client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    async with receiver(respond(204)) as hook:
        created = await _subscribe(client, keys["reports"], url=hook.url())
        path = f"/webhooks/{created['id']}"
        # Waiting when the webhook is disabled: failed then, not sent once it is enabled.
        missed = (await client.post(f"{path}/test", headers=keys["reports"])).json()
        await disable(app_state(client).sessionmaker, created["id"])
        assert (await client.post(f"{path}/enable", headers=keys["reports"])).status_code == 200
        sent = (await client.post(f"{path}/test", headers=keys["reports"])).json()
        async with arq_worker(settings), asyncio.timeout(20):
            while await _status(client, sent["delivery_id"]) is not ReportStatus.complete:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert await _status(client, missed["delivery_id"]) is ReportStatus.failed
    [request] = hook.requests
    body = Webhook(created["secret"]).verify(request.body, request.headers)
    assert body["type"] == "webhook.test"


async def _status(client: httpx.AsyncClient, delivery_id: str) -> ReportStatus | None:
    async with app_state(client).sessionmaker() as session:
        delivery = await session.get(WebhookDelivery, uuid.UUID(delivery_id))
    return None if delivery is None else delivery.status
