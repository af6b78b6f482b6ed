"""One delivery attempt against real receivers on 127.0.0.1 (started here): success with a
signature the library verifies, failures recorded, time-outs, redirects, bodies, refusals, and
the checked address pinned through TLS. Nothing is sent anywhere but 127.0.0.0/8."""

import ipaddress
import json
import ssl
import time
import uuid

import pytest
import trustme
from standardwebhooks import Webhook

from store_monitor.webhooks.events import event_id
from store_monitor.webhooks.sending import DeliveryResult, WebhookSender
from store_monitor.webhooks.signing import new_secret
from store_monitor.webhooks.targets import IPAddress, Resolver, resolve_target

from .receivers import endless_body, hang, receiver, respond

BODY = b'{"type":"incident.opened","timestamp":"2023-01-25T18:00:00.120000Z","data":{}}'
EVENT_ID = event_id(uuid.UUID(int=7))
LOOPBACK = ipaddress.ip_address("127.0.0.1")


class LoopbackResolver:
    """Every name resolves to 127.0.0.1; counts the look-ups."""

    def __init__(self) -> None:
        self.lookups: list[str] = []

    async def __call__(self, host: str, _port: int) -> list[IPAddress]:
        self.lookups.append(host)
        return [LOOPBACK]


def sender(
    *,
    allow_private: bool = True,
    total_timeout_seconds: float = 5.0,
    resolver: Resolver | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> WebhookSender:
    return WebhookSender(
        allow_private=allow_private,
        connect_timeout_seconds=1.0,
        total_timeout_seconds=total_timeout_seconds,
        resolver=resolver or LoopbackResolver(),
        ssl_context=ssl_context,
    )


async def deliver(webhook_sender: WebhookSender, url: str, secret: str = "") -> DeliveryResult:
    return await webhook_sender.deliver(
        url=url, secrets=[secret or new_secret()], event_id=EVENT_ID, body=BODY
    )


async def test_a_2xx_answer_is_a_success_and_the_receiver_verifies_the_signature() -> None:
    secret = new_secret()
    async with receiver(respond(204)) as hook:
        result = await deliver(sender(), hook.url(), secret)

    assert result.succeeded
    assert (result.status_code, result.error) == (204, None)
    assert 0 < result.duration_seconds < 2
    [request] = hook.requests
    assert (request.method, request.target, request.body) == ("POST", "/hook", BODY)
    assert request.headers["host"] == f"127.0.0.1:{hook.port}"
    assert request.headers["webhook-id"] == EVENT_ID
    assert Webhook(secret).verify(request.body, request.headers) == json.loads(BODY)


async def test_every_attempt_of_an_event_has_its_id_and_a_valid_signature() -> None:
    secret = new_secret()
    async with receiver(respond(200)) as hook:
        for _ in range(2):
            assert (await deliver(sender(), hook.url(), secret)).succeeded

    assert [request.headers["webhook-id"] for request in hook.requests] == [EVENT_ID] * 2
    for request in hook.requests:
        Webhook(secret).verify(request.body, request.headers)


async def test_a_503_is_a_failure_with_its_status_and_the_start_of_its_body() -> None:
    async with receiver(respond(503, b"busy, try later")) as hook:
        result = await deliver(sender(), hook.url())

    assert not result.succeeded
    assert (result.status_code, result.error) == (503, None)
    assert result.response_excerpt == "busy, try later"
    assert len(hook.requests) == 1


async def test_a_receiver_that_hangs_times_out_within_the_total_time_out() -> None:
    async with receiver(hang) as hook:
        started = time.monotonic()
        result = await deliver(sender(total_timeout_seconds=0.5), hook.url())
        elapsed = time.monotonic() - started

    assert not result.succeeded
    assert result.status_code is None
    assert result.error == "timed out after 0.5 s"
    assert 0.5 <= elapsed < 1.5
    assert len(hook.requests) == 1


async def test_a_refused_connection_is_a_failure_with_an_error() -> None:
    async with receiver(respond(204)) as hook:
        url = hook.url()
    result = await deliver(sender(), url)

    assert not result.succeeded
    assert result.status_code is None
    assert result.error is not None
    assert result.error.startswith("ConnectError")


async def test_a_redirect_is_not_followed() -> None:
    async with (
        receiver(respond(204)) as elsewhere,
        receiver(respond(307, headers={"location": elsewhere.url()})) as hook,
    ):
        result = await deliver(sender(), hook.url())

    assert not result.succeeded
    assert result.status_code == 307
    assert len(hook.requests) == 1
    assert elsewhere.requests == []


async def test_a_huge_body_is_not_read_past_the_excerpt() -> None:
    async with receiver(endless_body) as hook:
        result = await deliver(sender(total_timeout_seconds=5.0), hook.url())

    assert result.succeeded
    assert result.status_code == 200
    assert result.response_excerpt == "x" * 4096
    # The rest of the announced gigabyte never comes: reading on would take the full 5 s.
    assert result.duration_seconds < 2


async def test_private_targets_are_refused_unless_the_setting_allows_them() -> None:
    async with receiver(respond(204)) as hook:
        refused = await deliver(sender(allow_private=False), hook.url(scheme="https"))
        refused_http = await deliver(sender(allow_private=False), hook.url())
        allowed = await deliver(sender(allow_private=True), hook.url())

    assert refused.error == (
        "refused: 127.0.0.1 is not a public address "
        "(set STORE_MONITOR_WEBHOOK_PRIVATE_TARGETS=true to allow private targets)"
    )
    assert refused_http.error is not None
    assert "must start with https://" in refused_http.error
    assert allowed.succeeded
    assert len(hook.requests) == 1


async def test_a_name_resolving_to_loopback_is_refused_at_delivery() -> None:
    resolver = LoopbackResolver()
    async with receiver(respond(204)) as hook:
        result = await deliver(
            sender(allow_private=False, resolver=resolver),
            hook.url(host="hooks.example.com", scheme="https"),
        )

    assert result.error is not None
    assert "hooks.example.com resolves to 127.0.0.1, which is not a public address" in result.error
    assert resolver.lookups == ["hooks.example.com"]
    assert hook.requests == []


async def test_the_request_goes_to_the_address_resolved_once_with_the_names_host_header() -> None:
    resolver = LoopbackResolver()
    async with receiver(respond(204)) as hook:
        # `.test` names resolve nowhere else: only the pinned address can reach the receiver.
        result = await deliver(sender(resolver=resolver), hook.url(host="receiver.test"))

    assert result.succeeded
    assert resolver.lookups == ["receiver.test"]
    assert hook.requests[0].headers["host"] == f"receiver.test:{hook.port}"


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


def _tls_server(ca: trustme.CA, name: str, seen_names: list[str | None]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)

    def record(_socket: ssl.SSLObject, server_name: str | None, _context: ssl.SSLContext) -> None:
        seen_names.append(server_name)

    context.sni_callback = record
    return context


@pytest.fixture
def client_tls(certificate_authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    certificate_authority.configure_trust(context)
    return context


async def test_tls_to_the_pinned_address_sends_and_verifies_the_name(
    certificate_authority: trustme.CA, client_tls: ssl.SSLContext
) -> None:
    secret = new_secret()
    seen_names: list[str | None] = []
    server_tls = _tls_server(certificate_authority, "receiver.test", seen_names)
    async with receiver(respond(204), ssl_context=server_tls) as hook:
        result = await deliver(
            sender(ssl_context=client_tls),
            hook.url(host="receiver.test", scheme="https"),
            secret,
        )

    assert result.succeeded, result.error
    assert seen_names == ["receiver.test"]
    Webhook(secret).verify(hook.requests[0].body, hook.requests[0].headers)


async def test_tls_refuses_a_certificate_for_another_name(
    certificate_authority: trustme.CA, client_tls: ssl.SSLContext
) -> None:
    server_tls = _tls_server(certificate_authority, "other.test", [])
    async with receiver(respond(204), ssl_context=server_tls) as hook:
        result = await deliver(
            sender(ssl_context=client_tls), hook.url(host="receiver.test", scheme="https")
        )

    assert not result.succeeded
    assert result.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in result.error
    assert hook.requests == []


async def test_attempts_made_together_share_a_connection_and_alone_open_their_own() -> None:
    webhook_sender = sender()
    async with receiver(respond(204, keep_alive=True)) as hook:
        async with webhook_sender.connections() as shared:
            for _ in range(3):
                result = await webhook_sender.deliver(
                    url=hook.url(),
                    secrets=[new_secret()],
                    event_id=EVENT_ID,
                    body=BODY,
                    connections=shared,
                )
                assert result.succeeded
        assert hook.connections == 1
        for _ in range(2):
            assert (await deliver(webhook_sender, hook.url())).succeeded
    assert (len(hook.requests), hook.connections) == (5, 3)


async def test_shared_connections_are_per_address_and_tls_name() -> None:
    """A connection made for one name is never reused for another on the same address."""
    resolver = LoopbackResolver()
    webhook_sender = sender(resolver=resolver)
    async with webhook_sender.connections() as shared:
        targets = [
            await resolve_target(url, allow_private=True, resolver=resolver)
            for url in (
                "https://a.example:8443/x",
                "https://a.example:8443/y",
                "https://b.example:8443/x",
                "https://a.example:9443/x",
            )
        ]
        a, same_a, b, other_port = (shared.client(target) for target in targets)
    assert a is same_a
    assert len({id(a), id(b), id(other_port)}) == 3
