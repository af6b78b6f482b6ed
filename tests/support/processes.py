"""Real processes of the service in tests: their environment, a port, readiness, exit."""

import asyncio
import contextlib
import os
import socket
import subprocess
from collections.abc import AsyncIterator

import httpx


def environment(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORE_MONITOR_")}
    env.update({f"STORE_MONITOR_{name.upper()}": value for name, value in settings.items()})
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def exit_of(process: asyncio.subprocess.Process, *, within: float = 20) -> tuple[int, str]:
    async with asyncio.timeout(within):
        _, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def ready(client: httpx.AsyncClient) -> None:
    async with asyncio.timeout(30):
        while True:
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def redis_server(port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    """A private redis-server without persistence: stopping it loses everything it held."""
    process = await asyncio.create_subprocess_exec(
        *("redis-server", "--port", str(port), "--bind", "127.0.0.1"),
        *("--save", "", "--appendonly", "no"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(10):
            while True:
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    await writer.wait_closed()
                    break
                await asyncio.sleep(0.05)
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
