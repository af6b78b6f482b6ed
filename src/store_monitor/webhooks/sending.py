"""One delivery attempt: resolve and check the target, sign, POST, and say what happened.

An attempt succeeds on a 2xx answer and fails on anything else: another status (redirects are
not followed), a refused target, a network error, or the total time-out. It reads at most
`max_response_bytes` of the answer, kept as an excerpt for the deliveries list.

Each attempt opens its own connection: a shared pool would key connections by the pinned
address and could reuse one whose TLS session was made for another name on that address.
Proxies from the environment are ignored, since the connection must go to the checked address.
"""

import asyncio
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import httpx

from store_monitor.webhooks.signing import signed_headers
from store_monitor.webhooks.targets import (
    Resolver,
    UnsafeTargetError,
    resolve_target,
    system_resolver,
)

_USER_AGENT: Final = "store-monitor-webhooks/1"


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

    async def deliver(self, *, url: str, secret: str, event_id: str, body: bytes) -> DeliveryResult:
        """POST `body` to `url`, signed with `secret` now. Never raises for what the target or
        the network does: that is the result."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._total_timeout):
                status, excerpt = await self._post(
                    url=url, secret=secret, event_id=event_id, body=body
                )
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

    async def _post(self, *, url: str, secret: str, event_id: str, body: bytes) -> tuple[int, str]:
        target = await resolve_target(
            url, allow_private=self._allow_private, resolver=self._resolver
        )
        headers = {
            **signed_headers(secret=secret, event_id=event_id, body=body, at=datetime.now(UTC)),
            "host": target.host_header,
            "user-agent": _USER_AGENT,
            # The excerpt is read as sent: ask for it uncompressed rather than inflate it.
            "accept-encoding": "identity",
        }
        extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
        async with httpx.AsyncClient(
            verify=self._ssl_context,
            # Only the connection has a bound of its own: `deliver` bounds the whole attempt.
            timeout=httpx.Timeout(None, connect=self._connect_timeout),
            follow_redirects=False,
            trust_env=False,
        ) as client:
            request = client.build_request(
                "POST", target.url, content=body, headers=headers, extensions=extensions
            )
            response = await client.send(request, stream=True)
            try:
                excerpt = await self._read_excerpt(response)
            finally:
                await response.aclose()
        return response.status_code, excerpt

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


def _describe(error: httpx.HTTPError) -> str:
    name = type(error).__name__
    return f"{name}: {error}" if str(error) else name
