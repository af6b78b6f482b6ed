"""Request hardening, before any route: oversized headers, unknown `Host` names (DNS
rebinding), cross-site state-changing requests while authentication is off; and the security
headers of every response (`headers.secured`)."""

from collections.abc import Collection
from typing import Final
from urllib.parse import urlsplit

from fastapi import status
from starlette.types import ASGIApp, Receive, Scope, Send

from store_monitor.web.errors import error_response
from store_monitor.web.headers import secured

MAX_HEADER_BYTES: Final = 64 * 1024
"""Of all request header names and values together."""
MAX_HEADERS: Final = 100
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
# Probes come by address (a kubelet's Host is the pod's IP), and are open and read-only anyway.
_ANY_HOST_PATHS: Final = frozenset({"/healthz", "/readyz"})
# `same-origin` is the page itself and `none` the user (typed URL, bookmark); `same-site` is
# another origin, e.g. another port of localhost.
_CROSS_SITE: Final = frozenset({"cross-site", "same-site"})


class Hardening:
    """Refuses, with the API's JSON error body: 431 for headers over `MAX_HEADERS` or
    `MAX_HEADER_BYTES`, 400 for a `Host` not in `host_names` (empty: any; the probes answer
    any), and, with
    `refuse_cross_site`, 403 for a state-changing request that `Origin` or `Sec-Fetch-Site`
    says comes from another site (a browser would send it with no key when auth is off)."""

    def __init__(
        self, app: ASGIApp, *, host_names: Collection[str], refuse_cross_site: bool
    ) -> None:
        self.app = app
        self.host_names = frozenset(host_names)
        self.refuse_cross_site = refuse_cross_site

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            status_code, code, message = refusal
            await error_response(status_code, code, message)(scope, receive, secured(send))
            return
        await self.app(scope, receive, secured(send))

    def _refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        size = sum(len(name) + len(value) for name, value in headers)
        if len(headers) > MAX_HEADERS or size > MAX_HEADER_BYTES:
            return (
                status.HTTP_431_REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                f"the request has {len(headers)} headers of {size} bytes; at most "
                f"{MAX_HEADERS} headers of {MAX_HEADER_BYTES} bytes in all are accepted",
            )
        found = {name: value.decode("latin-1") for name, value in headers}
        host = found.get(b"host", "")
        if (
            self.host_names
            and _host_name(host) not in self.host_names
            and scope["path"] not in _ANY_HOST_PATHS
        ):
            return (
                status.HTTP_400_BAD_REQUEST,
                "unknown_host",
                f"this service does not answer to the host name {host[:100]!r}",
            )
        if self.refuse_cross_site and scope["method"] not in _SAFE_METHODS:
            fetch_site = found.get(b"sec-fetch-site", "").strip().lower()
            origin = found.get(b"origin")
            if fetch_site in _CROSS_SITE or (origin is not None and not _same_origin(origin, host)):
                return (
                    status.HTTP_403_FORBIDDEN,
                    "cross_site_request",
                    "state-changing requests from other web sites are refused",
                )
        return None


def _host_name(host: str) -> str:
    """The name of a `Host` header, without its port (and an IPv6 literal without brackets)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _same_origin(origin: str, host: str) -> bool:
    """Whether a browser's `Origin` names the host the request was sent to (any scheme: a
    proxy may end TLS), port included."""
    parts = urlsplit(origin.strip())
    return bool(parts.netloc) and parts.netloc.lower() == host.strip().lower()
