"""A live service for the generated clients to drive: `store-monitor serve` and `store-monitor
worker` as processes of their own, and the CLI's report to compare their download with."""

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from store_monitor.synthetic import GeneratedFiles


@contextlib.asynccontextmanager
async def running(
    *args: str, env: dict[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`store-monitor <args>` running until the block ends, then stopped (SIGTERM, then SIGKILL);
    its output goes to `log`."""
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "store_monitor.cli", *args),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=15)
            except TimeoutError:
                process.kill()
                await process.wait()


async def wait_until_ready(
    base_url: str, server: asyncio.subprocess.Process, log: Path, *, within: float = 60.0
) -> None:
    # Generous: a cold start on a busy machine (imports without bytecode) took over 20 s.
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as probe:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while server.returncode is None:
                    with contextlib.suppress(httpx.TransportError):
                        if (await probe.get("/readyz")).status_code == 200:
                            return
                    await asyncio.sleep(0.1)
    output = (await asyncio.to_thread(log.read_text, errors="replace"))[-3000:]
    raise AssertionError(f"the server is not ready (exit code {server.returncode}):\n{output}")


async def cli_report(data: GeneratedFiles, as_of: str) -> bytes:
    """What `store-monitor report` writes for the same files and instant."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "store_monitor.cli", "report"),
        *("--data", str(data.store_status.parent), "--as-of", as_of),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return stdout


async def new_key(env: dict[str, str], *options: str) -> str:
    """`store-monitor keys create <options>`: the secret, the last line of its stdout."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "store_monitor.cli", "keys", "create", *options),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    secret = stdout.decode().splitlines()[-1]
    assert secret.startswith("sm_"), stdout
    return secret
