"""The embedded mode as a newcomer runs it, `store-monitor serve` with nothing configured: its own
PostgreSQL from an empty folder, the same bytes as the CLI, restarts (after a crash too), one
owner per data directory, and a sample that stays apart from uploaded data."""

import asyncio
import os
import signal
import subprocess
import sys
from asyncio.subprocess import Process
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import polars as pl

from store_monitor.sample import SAMPLE_STORE_PREFIX, SAMPLE_STORES
from store_monitor.synthetic import GeneratedFiles, generate
from support.processes import environment, exit_of, free_port, ready
from support.service import embedded, embedded_data_dir, expected_csv, serve, upload_all
from support.service import wait_until_final as final


@asynccontextmanager
async def _serving(
    data_dir: Path,
) -> AsyncIterator[tuple[httpx.AsyncClient, asyncio.subprocess.Process]]:
    """`store-monitor serve` in the embedded mode on `data_dir`, once it is ready."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "store_monitor.cli", "serve", "--port", str(port)),
        env=environment(data_dir=str(data_dir), sample_data="false"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            await ready(client)
            yield client, process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _stop(client: httpx.AsyncClient, process: Process) -> None:
    await client.aclose()  # else uvicorn waits out its grace period for the idle connection
    process.send_signal(signal.SIGTERM)
    code, stderr = await exit_of(process, within=30)
    assert code == -signal.SIGTERM, stderr


def _server_pid(data_dir: Path) -> int | None:
    """The embedded postmaster's pid while it runs (its postmaster.pid, removed on a clean stop)."""
    try:
        return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except FileNotFoundError:
        return None


async def test_the_embedded_mode_comes_up_from_nothing_reports_and_restarts(
    tmp_path: Path, data_files: GeneratedFiles
) -> None:
    data_dir = embedded_data_dir(tmp_path, initialised=False)
    assert not data_dir.exists()
    expected = expected_csv(data_files)

    async with _serving(data_dir) as (client, process):
        await upload_all(client, data_files)
        report_id = (await client.post("/trigger_report")).json()["report_id"]
        assert (await final(client, report_id))["status"] == "Complete"
        assert (await client.get(f"/reports/{report_id}/csv")).content == expected
        assert _server_pid(data_dir) is not None
        await _stop(client, process)
    # Stopped cleanly: the server is gone with the service (its pid file last).
    assert _server_pid(data_dir) is None

    async with _serving(data_dir) as (client, process):
        assert (await client.get(f"/reports/{report_id}/csv")).content == expected
        orphan = _server_pid(data_dir)
        process.kill()  # a crash: no shutdown at all, the server outlives the service
        await process.wait()
    assert orphan is not None
    os.kill(orphan, 0)  # still running

    async with _serving(data_dir) as (client, process):
        # The next start stopped the orphan, started afresh, and lost nothing committed.
        assert (await client.get(f"/reports/{report_id}/csv")).content == expected
        assert _server_pid(data_dir) != orphan
        await _stop(client, process)


async def test_a_second_serve_on_the_same_data_directory_refuses(tmp_path: Path) -> None:
    data_dir = embedded_data_dir(tmp_path)
    async with _serving(data_dir) as (client, process):
        second = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "store_monitor.cli", "serve", "--port", str(free_port())),
            env=environment(data_dir=str(data_dir)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        code, stderr = await exit_of(second)
        assert code == 2
        assert stderr == (
            f"error: the embedded database {data_dir} is in use by another store-monitor "
            f"process (pid {process.pid}); stop it, or set STORE_MONITOR_DATA_DIR to another "
            "directory\n"
        )
        # The first one serves on, untouched.
        assert (await client.get("/readyz")).status_code == 200
        await _stop(client, process)


async def test_the_sample_keeps_stores_of_its_own_beside_uploads(tmp_path: Path) -> None:
    # `store-monitor generate`'s default seed is the sample's: without a prefix of their own,
    # the sample's stores would be the first stores of such files, and their polls would mix.
    files = generate(tmp_path / "data", stores=10, days=8, seed=0)
    async with serve(embedded(tmp_path, sample_data=True)) as client:
        await upload_all(client, files)
        report_id = (await client.post("/trigger_report")).json()["report_id"]
        assert (await final(client, report_id))["status"] == "Complete"
        csv = (await client.get(f"/reports/{report_id}/csv")).content
    ids = pl.read_csv(csv, schema_overrides={"store_id": pl.String})["store_id"]
    sample = ids.str.starts_with(SAMPLE_STORE_PREFIX)
    assert sample.sum() == SAMPLE_STORES
    offline = pl.read_csv(expected_csv(files), schema_overrides={"store_id": pl.String})
    assert ids.filter(~sample).to_list() == offline["store_id"].to_list()
