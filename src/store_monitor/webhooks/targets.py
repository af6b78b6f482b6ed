"""Where webhooks may be sent: public `https` URLs, checked when a subscription is made and again,
after DNS resolution, at every delivery.

The delivery check resolves the name once, checks every address it resolves to, and returns a
URL with the checked address as its host: the request connects to that address, so DNS cannot
answer differently between the check and the connection. TLS still verifies the certificate
against the name (httpx's `sni_hostname` extension) and `Host` carries the name.

With `allow_private` (the `STORE_MONITOR_WEBHOOK_PRIVATE_TARGETS` setting: tests, receivers on
premises) any address and plain `http` are allowed; the address is pinned all the same.
"""

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
"""(host name, port) → the addresses it resolves to; raises OSError when it resolves to none."""

MAX_URL_LENGTH: Final = 2048
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}
# Prefixes whose IPv6 addresses carry an IPv4 one that a router would forward to.
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
# A DNS name once IDNA-encoded: dot-separated labels of letters, digits, `-` and `_`, not
# starting or ending with `-`, 63 characters at most each, 253 in all, an optional final dot.
_LABEL: Final = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
_HOST_NAME: Final = re.compile(rf"(?=.{{1,253}}\.?$){_LABEL}(\.{_LABEL})*\.?", re.IGNORECASE)


class UnsafeTargetError(ValueError):
    """A URL webhooks may not be sent to; the message says why, for the API's 422."""


@dataclass(frozen=True, kw_only=True)
class ResolvedTarget:
    """A target checked at delivery: send to `url` with these headers and extensions."""

    url: httpx.URL
    """The target URL with the checked address as its host."""
    host_header: str
    """The `Host` the receiver expects: the URL's own host (and port)."""
    sni_hostname: str | None
    """The name TLS sends and verifies the certificate against; None for an address literal."""


def check_target_url(url: str, *, allow_private: bool) -> str:
    """The URL, if webhooks may be sent to it; otherwise `UnsafeTargetError`.

    Checks what can be seen without DNS: length, scheme, host, credentials, and addresses
    written in the URL (in any of the forms an IPv4 resolver accepts, e.g. `2130706433`).
    """
    _parse(url, allow_private=allow_private)
    return url


async def resolve_target(url: str, *, allow_private: bool, resolver: Resolver) -> ResolvedTarget:
    """Check `url` again, resolve its host, and refuse it if any address it resolves to is not
    public (unless `allow_private`); pin the first address. Raises `UnsafeTargetError`."""
    parsed = _parse(url, allow_private=allow_private)
    port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
    literal = _literal_address(parsed.host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = await resolver(parsed.host, port)
        except OSError as error:
            raise UnsafeTargetError(f"{parsed.host} does not resolve: {error}") from error
        if not addresses:
            raise UnsafeTargetError(f"{parsed.host} does not resolve to any address")
    if not allow_private:
        for address in addresses:
            _refuse_non_public(address, what=f"{parsed.host} resolves to {address}, which")
    return ResolvedTarget(
        url=parsed.copy_with(host=str(addresses[0])),
        host_header=parsed.netloc.decode("ascii"),
        sni_hostname=parsed.host if literal is None and parsed.scheme == "https" else None,
    )


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The operating system's resolver (`getaddrinfo`), TCP addresses in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def is_public_address(address: IPAddress) -> bool:
    """Whether an address is on the public internet: not loopback, private, link-local,
    multicast, reserved, unspecified or shared (carrier NAT), nor an IPv6 form of such an
    IPv4 address (mapped, 6to4, NAT64)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(embedded)
    return address.is_global and not (
        address.is_multicast
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_private
    )


def _parse(url: str, *, allow_private: bool) -> httpx.URL:
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeTargetError(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, UnicodeError) as error:
        raise UnsafeTargetError(f"not a valid URL: {error}") from error
    allowed_schemes = ("https", "http") if allow_private else ("https",)
    if parsed.scheme not in allowed_schemes:
        raise UnsafeTargetError(
            f"the URL must start with {' or '.join(f'{s}://' for s in allowed_schemes)}"
        )
    if not parsed.host:
        raise UnsafeTargetError("the URL has no host")
    if parsed.userinfo:
        raise UnsafeTargetError("the URL may not carry credentials (user:password@)")
    if parsed.port == 0:
        raise UnsafeTargetError("the URL's port 0 is no port to connect to")
    literal = _literal_address(parsed.host)
    if literal is None and not _HOST_NAME.fullmatch(parsed.raw_host.decode("ascii")):
        raise UnsafeTargetError(f"{parsed.host} is not a valid host name")
    if not allow_private:
        host = parsed.host.rstrip(".").lower()
        if host == "localhost" or host.endswith(".localhost"):
            raise UnsafeTargetError(f"{parsed.host} is a loopback name")
        if literal is not None:
            _refuse_non_public(literal, what=str(literal))
    return parsed


def _literal_address(host: str) -> IPAddress | None:
    """The address a host written as an address stands for, in any form resolvers accept."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        # The legacy forms (`127.1`, `0x7f.0.0.1`, `2130706433`) that getaddrinfo also accepts.
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _refuse_non_public(address: IPAddress, *, what: str) -> None:
    if not is_public_address(address):
        raise UnsafeTargetError(
            f"{what} is not a public address (set STORE_MONITOR_WEBHOOK_PRIVATE_TARGETS=true "
            "to allow private targets)"
        )
