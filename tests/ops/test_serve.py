"""`store-monitor serve` as a process: whose `X-Forwarded-For` counts (only a trusted proxy's, for
the failed-key limiter too), and a start-up failure said in one line."""

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from store_monitor.cli.server import uvicorn_config
from store_monitor.settings import Settings
from support.processes import environment, exit_of, free_port, ready
from support.service import embedded_data_dir

# Another loopback address (all of 127.0.0.0/8 is the loopback): the proxy's connections.
PROXY = "127.0.0.2"
FAILURES = 3
WRONG_KEY = {"Authorization": "Bearer sm_not-a-key-of-this-server"}


@asynccontextmanager
async def _serving(tmp_path: Path, **settings: str) -> AsyncIterator[str]:
    """A ready `store-monitor serve` with keys required, in the embedded mode: its base URL."""
    port = free_port()
    env = environment(
        data_dir=str(embedded_data_dir(tmp_path)),
        sample_data="false",
        auth="required",
        secret_key="s" * 40,
        auth_failures_per_minute=str(FAILURES),
        **settings,
    )
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "store_monitor.cli", "serve", "--port", str(port)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as probe:
            await ready(probe)
        yield base_url
    finally:
        process.kill()
        await process.wait()


async def _statuses(client: httpx.AsyncClient, forwarded_for: list[str]) -> list[int]:
    """One request with a wrong key per address claimed in `X-Forwarded-For`, in turn."""
    statuses = []
    for address in forwarded_for:
        headers = {**WRONG_KEY, "X-Forwarded-For": address}
        statuses.append((await client.get("/reports", headers=headers)).status_code)
    return statuses


def _client(base_url: str, *, source: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=source)
    return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=30)


async def test_only_a_trusted_proxy_says_who_the_client_is(tmp_path: Path) -> None:
    rotating = [f"198.51.100.{n}" for n in range(FAILURES + 3)]
    async with _serving(tmp_path, trusted_proxies=PROXY) as base_url:
        # A client that is not the proxy: its forwarded addresses are ignored, and its own
        # address is the one locked out.
        async with _client(base_url, source="127.0.0.1") as client:
            assert await _statuses(client, rotating) == [401] * FAILURES + [429] * 3
        # The proxy: each forwarded address is a client of its own, counted on its own.
        async with _client(base_url, source=PROXY) as proxy:
            assert await _statuses(proxy, rotating) == [401] * len(rotating)
            one = ["203.0.113.7"] * (FAILURES + 1)
            assert await _statuses(proxy, one) == [401] * FAILURES + [429]
            # The proxy's other clients are not locked out with that one.
            assert await _statuses(proxy, ["203.0.113.8"]) == [401]


async def test_without_trusted_proxies_forwarded_headers_count_for_nothing(tmp_path: Path) -> None:
    rotating = [f"198.51.100.{n}" for n in range(FAILURES + 2)]
    async with _serving(tmp_path) as base_url, _client(base_url, source="127.0.0.1") as client:
        assert await _statuses(client, rotating) == [401] * FAILURES + [429] * 2


def test_forwarded_headers_are_off_unless_proxies_are_configured() -> None:
    assert uvicorn_config(_nothing, Settings()).proxy_headers is False
    trusting = Settings(trusted_proxies="10.0.0.0/8, 192.0.2.1,::1")
    config = uvicorn_config(_nothing, trusting)
    assert config.proxy_headers is True
    assert config.forwarded_allow_ips == ["10.0.0.0/8", "192.0.2.1/32", "::1/128"]


async def test_a_wrong_setting_is_one_line_naming_it(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "store_monitor.cli", "serve", "--port", str(free_port())),
        env=environment(
            data_dir=str(tmp_path / "postgres"), trusted_proxies="10.0.0.1,lb.internal"
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    code, stderr = await exit_of(process, within=60)
    assert code == 2
    assert stderr == (
        "error: STORE_MONITOR_TRUSTED_PROXIES: 'lb.internal' is not an IP address or network "
        "such as 10.0.0.0/8\n"
    )


async def _nothing(scope: object, receive: object, send: object) -> None:
    raise AssertionError("not served")


async def test_a_start_up_failure_is_one_line_and_a_failed_exit(tmp_path: Path) -> None:
    # The embedded server will not take over a folder that holds something else.
    data_dir = tmp_path / "postgres"
    data_dir.mkdir()
    (data_dir / "notes.txt").write_text("not a database")
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "store_monitor.cli", "serve", "--port", str(free_port())),
        env=environment(data_dir=str(data_dir), log_json="true"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    code, stderr = await exit_of(process, within=60)
    assert code == 2
    *logged, last = stderr.splitlines()
    assert last == (
        f"error: {data_dir} is neither empty nor a PostgreSQL data directory: move it away, "
        "or set STORE_MONITOR_DATA_DIR to another directory"
    )
    # Before it, the log's own lines, each one line, none a traceback.
    assert "Traceback" not in stderr
    assert all("\n" not in json.loads(line)["message"] for line in logged)
