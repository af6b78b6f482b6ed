"""One delivery attempt: resolve and check the target, sign, POST, and say what happened.

An attempt succeeds on a 2xx answer and fails on anything else: another status (redirects are
not followed), a refused target, a network error, or the total time-out. It reads at most
`max_response_bytes` of the answer, kept as an excerpt for the deliveries list.

Attempts made together (`WebhookSender.connections`, a batch of deliveries) share connections,
one client per checked address *and* TLS name: a pool keyed by the address alone could reuse a
connection whose TLS session was made for another name on that address. An attempt alone opens
its own. Proxies from the environment are ignored: the connection must go to the checked address.
"""

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import httpx

from store_monitor.webhooks.signing import signed_headers
from store_monitor.webhooks.targets import (
    ResolvedTarget,
    Resolver,
    UnsafeTargetError,
    resolve_target,
    system_resolver,
)

_USER_AGENT: Final = "store-monitor-webhooks/1"
_CONNECTIONS_PER_TARGET: Final = 4


@dataclass(frozen=True, kw_only=True)
class DeliveryResult:
    """What one attempt got: a status code, or an error when no answer came."""

    status_code: int | None
    error: str | None
    duration_seconds: float
    response_excerpt: str = ""
    """The start of the answer's body (at most `max_response_bytes`), decoded leniently."""

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    """Sends events; one instance per process (it holds the TLS settings, built once)."""

    def __init__(
        self,
        *,
        allow_private: bool,
        connect_timeout_seconds: float,
        total_timeout_seconds: float,
        max_response_bytes: int = 4096,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._connect_timeout = connect_timeout_seconds
        self._total_timeout = total_timeout_seconds
        self._max_response_bytes = max_response_bytes
        self._resolver = resolver
        self._ssl_context = ssl_context or httpx.create_ssl_context()

    @contextlib.asynccontextmanager
    async def connections(self) -> AsyncIterator["Connections"]:
        """Connections for the attempts made within (`deliver`'s `connections`), closed after."""
        shared = Connections(self._client)
        try:
            yield shared
        finally:
            await shared.aclose()

    async def deliver(
        self,
        *,
        url: str,
        secrets: Sequence[str],
        event_id: str,
        body: bytes,
        connections: "Connections | None" = None,
    ) -> DeliveryResult:
        """POST `body` to `url`, signed with each of `secrets` now, on `connections` (None: a
        connection of its own). Never raises for what the target or the network does: that is
        the result. The time-out bounds the name's resolution, then the request from its turn."""
        if connections is None:
            async with self.connections() as own:
                return await self.deliver(
                    url=url, secrets=secrets, event_id=event_id, body=body, connections=own
                )
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._total_timeout):
                target = await resolve_target(
                    url, allow_private=self._allow_private, resolver=self._resolver
                )
            async with connections.turn(target) as client:
                started = time.monotonic()
                async with asyncio.timeout(self._total_timeout):
                    status, excerpt = await self._post(client, target, secrets, event_id, body)
        except TimeoutError:
            return self._failed(f"timed out after {self._total_timeout:g} s", started)
        except UnsafeTargetError as error:
            return self._failed(f"refused: {error}", started)
        except httpx.HTTPError as error:
            return self._failed(_describe(error), started)
        return DeliveryResult(
            status_code=status,
            error=None,
            duration_seconds=time.monotonic() - started,
            response_excerpt=excerpt,
        )

    async def _post(
        self,
        client: httpx.AsyncClient,
        target: ResolvedTarget,
        secrets: Sequence[str],
        event_id: str,
        body: bytes,
    ) -> tuple[int, str]:
        headers = {
            **signed_headers(secrets=secrets, event_id=event_id, body=body, at=datetime.now(UTC)),
            "host": target.host_header,
            "user-agent": _USER_AGENT,
            # The excerpt is read as sent: ask for it uncompressed rather than inflate it.
            "accept-encoding": "identity",
        }
        extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
        request = client.build_request(
            "POST", target.url, content=body, headers=headers, extensions=extensions
        )
        response = await client.send(request, stream=True)
        try:
            excerpt = await self._read_excerpt(response)
        finally:
            await response.aclose()
        return response.status_code, excerpt

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            verify=self._ssl_context,
            # Only the connection has a bound of its own: `deliver` bounds the whole attempt.
            timeout=httpx.Timeout(None, connect=self._connect_timeout),
            follow_redirects=False,
            trust_env=False,
        )

    async def _read_excerpt(self, response: httpx.Response) -> str:
        excerpt = b""
        async for chunk in response.aiter_raw():
            excerpt += chunk
            if len(excerpt) >= self._max_response_bytes:
                break
        return excerpt[: self._max_response_bytes].decode("utf-8", errors="replace")

    @staticmethod
    def _failed(error: str, started: float) -> DeliveryResult:
        return DeliveryResult(
            status_code=None, error=error, duration_seconds=time.monotonic() - started
        )


class Connections:
    """Clients of attempts made together: one per checked address, port and TLS name, so that
    a connection is reused only for the name its TLS session was made for. The attempts to one
    take turns on a few connections, reused one after the other, rather than each opening its
    own at once."""

    def __init__(self, new_client: Callable[[], httpx.AsyncClient]) -> None:
        self._new_client = new_client
        self._clients: dict[_Key, tuple[httpx.AsyncClient, asyncio.Semaphore]] = {}

    def client(self, target: ResolvedTarget) -> httpx.AsyncClient:
        return self._entry(target)[0]

    @contextlib.asynccontextmanager
    async def turn(self, target: ResolvedTarget) -> AsyncIterator[httpx.AsyncClient]:
        """The target's client, once one of its connections is free for this attempt."""
        client, turns = self._entry(target)
        async with turns:
            yield client

    async def aclose(self) -> None:
        clients, self._clients = [client for client, _ in self._clients.values()], {}
        await asyncio.gather(*(client.aclose() for client in clients))

    def _entry(self, target: ResolvedTarget) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        key = (target.url.scheme, target.url.host, target.url.port, target.sni_hostname)
        if key not in self._clients:
            turns = asyncio.Semaphore(_CONNECTIONS_PER_TARGET)
            self._clients[key] = (self._new_client(), turns)
        return self._clients[key]


_Key = tuple[str, str, int | None, str | None]


def _describe(error: httpx.HTTPError) -> str:
    name = type(error).__name__
    return f"{name}: {error}" if str(error) else name
