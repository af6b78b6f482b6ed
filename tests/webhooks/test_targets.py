"""Target safety: URLs refused at subscription, and names refused after resolution.

Nothing here opens a connection: the resolver is a table the test controls."""

import ipaddress
import socket

import pytest

from store_monitor.webhooks.targets import (
    IPAddress,
    Resolver,
    UnsafeTargetError,
    check_target_url,
    is_public_address,
    resolve_target,
    system_resolver,
)


def table_resolver(table: dict[str, list[str]]) -> Resolver:
    async def resolve(host: str, _port: int) -> list[IPAddress]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(address) for address in table[host]]

    return resolve


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.com/hook", "must start with https://"),
        ("ftp://example.com/hook", "must start with https://"),
        ("https://user:secret@example.com/hook", "credentials"),
        ("https://example.com:0/hook", "port 0"),
        ("https://example.com/" + "a" * 2048, "longer than 2048"),
        ("https:///hook", "no host"),
        ("https://exa mple.com/", "not a valid host name"),
        ("https://a..b/", "not a valid host name"),
        ("https://-hooks.example.com/", "not a valid host name"),
        ("https://[::1/", "not a valid URL"),
        ("https://localhost/hook", "loopback name"),
        ("https://hooks.localhost./", "loopback name"),
        ("https://127.0.0.1/", "127.0.0.1 is not a public address"),
        ("https://127.1/", "127.0.0.1 is not"),
        ("https://2130706433/", "127.0.0.1 is not"),
        ("https://0x7f.0.0.1/", "127.0.0.1 is not"),
        ("https://10.1.2.3/", "not a public"),
        ("https://172.16.0.1/", "not a public"),
        ("https://192.168.1.1/", "not a public"),
        ("https://169.254.169.254/latest/meta-data", "not a public"),
        ("https://100.64.0.1/", "not a public"),
        ("https://224.0.0.1/", "not a public"),
        ("https://240.0.0.1/", "not a public"),
        ("https://255.255.255.255/", "not a public"),
        ("https://0.0.0.0/", "not a public"),
        ("https://[::1]/", "not a public"),
        ("https://[::]/", "not a public"),
        ("https://[fe80::1]/", "not a public"),
        ("https://[fc00::1]/", "not a public"),
        ("https://[ff02::1]/", "not a public"),
        ("https://[::ffff:127.0.0.1]/", "not a public"),
        ("https://[::ffff:10.0.0.1]/", "not a public"),
        ("https://[2002:7f00:1::]/", "not a public"),
        ("https://[64:ff9b::a00:1]/", "not a public"),
        ("https://[2001:db8::1]/", "not a public"),
    ],
)
def test_unsafe_urls_are_refused_at_subscription(url: str, reason: str) -> None:
    with pytest.raises(UnsafeTargetError, match=reason):
        check_target_url(url, allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hook",
        "https://hooks.example.com:8443/a/b?c=1",
        "https://93.184.216.34/hook",
        "https://[2606:4700:4700::1111]/hook",
        "https://[::ffff:93.184.216.34]/hook",
        "https://exämple.com/hook",
    ],
)
def test_public_https_urls_are_accepted(url: str) -> None:
    assert check_target_url(url, allow_private=False) == url


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hook", "http://localhost/hook", "https://10.0.0.5/hook"]
)
def test_the_private_targets_setting_allows_private_addresses_and_http(url: str) -> None:
    assert check_target_url(url, allow_private=True) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [("ftp://127.0.0.1/", "https:// or http://"), ("http://u:p@127.0.0.1/", "credentials")],
)
def test_the_private_targets_setting_still_refuses_other_schemes_and_credentials(
    url: str, reason: str
) -> None:
    with pytest.raises(UnsafeTargetError, match=reason):
        check_target_url(url, allow_private=True)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("169.254.0.1", False),
        ("100.64.0.1", False),
        ("224.0.0.251", False),
        ("239.255.255.250", False),
        ("240.0.0.1", False),
        ("0.0.0.0", False),
        ("::", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd12:3456::1", False),
        ("ff05::2", False),
        ("::ffff:192.168.0.1", False),
        ("2002:c0a8:1::", False),
        ("64:ff9b::7f00:1", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


async def test_a_name_resolving_to_a_private_address_is_refused_at_delivery() -> None:
    url = "https://hooks.example.com/hook"
    check_target_url(url, allow_private=False)

    with pytest.raises(UnsafeTargetError, match=r"hooks\.example\.com resolves to 10\.0\.0\.7"):
        await resolve_target(
            url,
            allow_private=False,
            resolver=table_resolver({"hooks.example.com": ["10.0.0.7"]}),
        )


@pytest.mark.parametrize(
    "addresses", [["93.184.216.34", "127.0.0.1"], ["::ffff:127.0.0.1"], ["fe80::1"]]
)
async def test_any_non_public_address_among_the_answers_refuses_the_name(
    addresses: list[str],
) -> None:
    with pytest.raises(UnsafeTargetError, match="not a public address"):
        await resolve_target(
            "https://hooks.example.com/hook",
            allow_private=False,
            resolver=table_resolver({"hooks.example.com": addresses}),
        )


async def test_a_public_name_is_pinned_to_its_checked_address() -> None:
    target = await resolve_target(
        "https://hooks.example.com:8443/hook?x=1",
        allow_private=False,
        resolver=table_resolver({"hooks.example.com": ["93.184.216.34", "93.184.216.35"]}),
    )

    assert str(target.url) == "https://93.184.216.34:8443/hook?x=1"
    assert target.host_header == "hooks.example.com:8443"
    assert target.sni_hostname == "hooks.example.com"


async def test_an_ipv6_answer_is_bracketed_in_the_pinned_url() -> None:
    target = await resolve_target(
        "https://hooks.example.com/hook",
        allow_private=False,
        resolver=table_resolver({"hooks.example.com": ["2606:4700:4700::1111"]}),
    )

    assert str(target.url) == "https://[2606:4700:4700::1111]/hook"
    assert target.host_header == "hooks.example.com"


async def test_an_address_in_the_url_needs_no_resolution_nor_sni() -> None:
    target = await resolve_target(
        "https://93.184.216.34/hook", allow_private=False, resolver=table_resolver({})
    )

    assert target.sni_hostname is None
    assert target.host_header == "93.184.216.34"


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(UnsafeTargetError, match="does not resolve"):
        await resolve_target(
            "https://gone.example.com/", allow_private=False, resolver=table_resolver({})
        )


async def test_the_url_is_checked_again_at_delivery() -> None:
    with pytest.raises(UnsafeTargetError, match="must start with https://"):
        await resolve_target(
            "http://hooks.example.com/", allow_private=False, resolver=table_resolver({})
        )


async def test_the_system_resolver_answers_addresses() -> None:
    addresses = await system_resolver("127.0.0.1", 80)

    assert addresses == [ipaddress.ip_address("127.0.0.1")]
