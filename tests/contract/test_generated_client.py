"""A client generated from openapi.json by openapi-python-client drives a live service: a server
process and a worker process on Postgres and Redis, ingest to CSV, same bytes as the CLI."""

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from api.service import REDIS_URL, empty_postgres
from store_monitor.synthetic import DEFAULT_END, GeneratedFiles, generate

from .test_openapi import OPENAPI

PACKAGE = "store_monitor_client"
# openapi-python-client has no request bodies of type text/csv: for the uploads it generates
# the multipart form only, and says so. Anything else it cannot read is a contract problem.
KNOWN_WARNING = "Unsupported content type text/csv"
UPLOADS = {"POST /ingest/polls", "POST /ingest/business-hours", "POST /ingest/timezones"}


def generate_client(output: Path) -> str:
    """Run the README's command (`openapi-python-client generate ...`); its messages."""
    completed = subprocess.run(
        [
            # The script `uv run openapi-python-client` runs: this environment's.
            str(Path(sys.executable).with_name("openapi-python-client")),
            "generate",
            *("--path", str(OPENAPI), "--output-path", str(output), "--meta", "uv"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    messages = completed.stdout + completed.stderr
    assert completed.returncode == 0, messages
    return messages


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The generated client, importable as `store_monitor_client` while the module's tests run."""
    output = tmp_path_factory.mktemp("client") / "store-monitor-client"
    messages = generate_client(output)
    problems = re.findall(r"^\w+ parsing (\S+ \S+) within \S+\n\n(.+)$", messages, re.MULTILINE)
    unexpected = [problem for problem in problems if problem[1] != KNOWN_WARNING]
    assert not unexpected, messages
    assert {operation for operation, _ in problems} <= UPLOADS, messages
    # An operation the generator cannot read is left out, with or without a warning.
    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    for operations in document["paths"].values():
        for operation in operations.values():
            module = (
                output / PACKAGE / "api" / operation["tags"][0] / f"{operation['operationId']}.py"
            )
            assert module.is_file(), f"no {module.name} generated\n{messages}"
    sys.path.insert(0, str(output))
    try:
        yield output
    finally:
        sys.path.remove(str(output))
        for name in [name for name in sys.modules if name.partition(".")[0] == PACKAGE]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> GeneratedFiles:
    return generate(tmp_path_factory.mktemp("data"), stores=30, days=8, seed=7)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def _process(
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


async def _wait_until_ready(
    base_url: str, server: asyncio.subprocess.Process, log: Path, *, within: float = 20.0
) -> None:
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


@pytest.fixture
async def service(postgres_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A live service: `store-monitor serve` and `store-monitor worker` processes on a fresh
    Postgres database and a queue of their own; its base URL."""
    await empty_postgres(postgres_url)
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("STORE_MONITOR_")}
    env |= {
        "STORE_MONITOR_DATABASE_URL": postgres_url,
        "STORE_MONITOR_REDIS_URL": REDIS_URL,
        "STORE_MONITOR_QUEUE_NAME": f"store-monitor-test:{uuid4().hex}",
        "STORE_MONITOR_LOG_LEVEL": "WARNING",
    }
    base_url = f"http://127.0.0.1:{port}"
    async with (
        _process("serve", "--port", str(port), env=env, log=tmp_path / "serve.log") as server,
        _process("worker", env=env, log=tmp_path / "worker.log"),
    ):
        await _wait_until_ready(base_url, server, tmp_path / "serve.log")
        yield base_url


async def _cli_report(data: GeneratedFiles, as_of: str) -> bytes:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "store_monitor.cli", "report"),
        *("--data", str(data.store_status.parent), "--as-of", as_of),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return stdout


async def test_generated_client_runs_the_whole_flow(
    client_package: Path, service: str, data: GeneratedFiles
) -> None:
    from store_monitor_client import Client
    from store_monitor_client.api.health import readyz
    from store_monitor_client.api.ingest import (
        ingest_business_hours,
        ingest_polls,
        ingest_timezones,
    )
    from store_monitor_client.api.reports import (
        delete_report,
        download_report_csv,
        get_report_metadata,
        list_reports,
        trigger_report,
    )
    from store_monitor_client.models import (
        IngestBusinessHoursFilesBody,
        IngestPollsFilesBody,
        IngestResponse,
        IngestTimezonesFilesBody,
        ReportList,
        ReportMetadata,
        TriggerReportRequest,
        TriggerReportResponse,
        WireReportStatus,
    )
    from store_monitor_client.types import File

    as_of = DEFAULT_END - timedelta(hours=2)
    async with Client(
        base_url=service, raise_on_unexpected_status=True, timeout=httpx.Timeout(30)
    ) as client:
        assert (await readyz.asyncio(client=client)) is not None

        uploads: list[tuple[Any, Any, Path]] = [
            (ingest_polls, IngestPollsFilesBody, data.store_status),
            (ingest_business_hours, IngestBusinessHoursFilesBody, data.menu_hours),
            (ingest_timezones, IngestTimezonesFilesBody, data.timezones),
        ]
        for operation, body, path in uploads:
            with path.open("rb") as payload:
                upload = File(payload=payload, file_name=path.name, mime_type="text/csv")
                ingested = await operation.asyncio(client=client, body=body(file=upload))
            assert isinstance(ingested, IngestResponse), ingested
            assert ingested.rows_added == ingested.rows_received > 0
            assert ingested.stores > 0

        triggered = await trigger_report.asyncio(
            client=client, body=TriggerReportRequest(as_of=as_of)
        )
        assert isinstance(triggered, TriggerReportResponse), triggered

        async with asyncio.timeout(20):
            while True:
                metadata = await get_report_metadata.asyncio(
                    client=client, report_id=triggered.report_id
                )
                assert isinstance(metadata, ReportMetadata), metadata
                if metadata.status in (WireReportStatus.COMPLETE, WireReportStatus.FAILED):
                    break
                await asyncio.sleep(0.1)
        assert metadata.status is WireReportStatus.COMPLETE, metadata.error
        assert metadata.now == as_of
        assert metadata.row_count == data.stores

        downloaded = await download_report_csv.asyncio_detailed(
            client=client, report_id=triggered.report_id
        )
        assert downloaded.status_code == 200
        assert downloaded.headers["content-type"].startswith("text/csv")

        listed = await list_reports.asyncio(
            client=client, status=WireReportStatus.COMPLETE, limit=10
        )
        assert isinstance(listed, ReportList), listed
        assert [report.report_id for report in listed.reports] == [triggered.report_id]
        assert listed.next_cursor is None

        deleted = await delete_report.asyncio_detailed(client=client, report_id=triggered.report_id)
        assert deleted.status_code == 204
        gone = await get_report_metadata.asyncio_detailed(
            client=client, report_id=triggered.report_id
        )
        assert gone.status_code == 404
        assert (await list_reports.asyncio(client=client)).reports == []  # type: ignore[union-attr]

    # The raw body, not the client's decoded text: the bytes must be the CLI's exactly.
    assert downloaded.content == await _cli_report(data, as_of.isoformat())
