"""Signing per Standard Webhooks: a receiver verifies with the library's `Webhook.verify`."""

import base64
import hashlib
import hmac
import math
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from store_monitor.webhooks.signing import new_secret, signed_headers

BODY = b'{"type":"incident.opened","timestamp":"2023-01-25T18:00:00.120000Z","data":{}}'


def test_secrets_are_whsec_and_32_random_bytes() -> None:
    first, second = new_secret(), new_secret()

    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32
    assert first != second


def test_a_receiver_verifies_the_signed_headers() -> None:
    secret = new_secret()
    at = datetime.now(UTC)

    headers = signed_headers(secrets=[secret], event_id="evt_1", body=BODY, at=at)

    assert headers["webhook-id"] == "evt_1"
    assert headers["webhook-timestamp"] == str(math.floor(at.timestamp()))
    assert headers["content-type"] == "application/json"
    assert Webhook(secret).verify(BODY, headers) == {
        "type": "incident.opened",
        "timestamp": "2023-01-25T18:00:00.120000Z",
        "data": {},
    }


def test_two_secrets_sign_twice_and_either_verifies() -> None:
    old, new = new_secret(), new_secret()
    at = datetime.now(UTC)

    headers = signed_headers(secrets=[new, old], event_id="evt_1", body=BODY, at=at)

    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert (
        signatures[0]
        == signed_headers(secrets=[new], event_id="evt_1", body=BODY, at=at)["webhook-signature"]
    )
    for secret in (old, new):
        assert Webhook(secret).verify(BODY, headers)["type"] == "incident.opened"
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(new_secret()).verify(BODY, headers)


def test_the_signature_is_the_specifications_hmac() -> None:
    secret = new_secret()
    at = datetime(2026, 1, 1, 12, 0, 0, 900000, tzinfo=UTC)

    headers = signed_headers(secrets=[secret], event_id="evt_1", body=BODY, at=at)

    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"evt_1.{headers['webhook-timestamp']}.".encode() + BODY
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("secret", "No matching signature"),
        ("body", "No matching signature"),
        ("event_id", "No matching signature"),
        ("stale", "too old"),
    ],
)
def test_receivers_refuse_what_was_not_signed_so(change: str, message: str) -> None:
    secret = new_secret()
    at = datetime.now(UTC) - (timedelta(minutes=10) if change == "stale" else timedelta())
    headers = signed_headers(secrets=[secret], event_id="evt_1", body=BODY, at=at)
    body = BODY.replace(b"opened", b"closed") if change == "body" else BODY
    if change == "event_id":
        headers["webhook-id"] = "evt_2"
    verifier = Webhook(new_secret() if change == "secret" else secret)

    with pytest.raises(WebhookVerificationError, match=message):
        verifier.verify(body, headers)
