"""The Postgres + Arq service end to end: ingest rate, trigger-to-Complete, CSV download.

Runs the real processes (`store-monitor serve` and `store-monitor worker`) against a Postgres
database made for the run and dropped after it, and compares with the offline report on the
same files, in the same run.
"""

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from uuid import uuid4

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from benchmarks.report import best_of, data_set, full_report
from benchmarks.table import print_table
from store_monitor import frames, ingest, synthetic
from store_monitor.db.migrations import upgrade_to_head
from store_monitor.db.partitions import ensure_poll_partitions
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.sources import read_business_hours, read_polls, read_timezones

ADMIN_URL = os.environ.get(
    "STORE_MONITOR_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("STORE_MONITOR_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _admin(statement: str) -> None:
    admin = create_async_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with admin.connect() as connection:
            await connection.execute(sa.text(statement))
    finally:
        await admin.dispose()


@contextmanager
def database() -> Iterator[str]:
    """A fresh database at the latest schema, dropped afterwards."""
    name = f"store_monitor_bench_{uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        asyncio.run(upgrade_to_head(url))
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _ingest(url: str, folder: Path, *, weeks_ahead: bool = False) -> tuple[int, float]:
    """Load one generated data set; the polls' count and the seconds their load took.

    `weeks_ahead`: the polls' weekly partitions are made (empty) first, as the maintenance does
    for live polls; otherwise the load makes them (a backfill)."""
    polls = read_polls(folder / frames.POLLS_FILE)
    hours = read_business_hours(folder / frames.HOURS_FILE)
    zones = read_timezones(folder / frames.TIMEZONES_FILE)
    engine = create_engine(url, process_name="store-monitor-bench")
    try:
        sessionmaker = create_sessionmaker(engine)
        if weeks_ahead:
            async with sessionmaker.begin() as session:
                first, last = polls["timestamp_utc"].min(), polls["timestamp_utc"].max()
                assert isinstance(first, datetime)
                assert isinstance(last, datetime)
                await ensure_poll_partitions(session, start=first, through=last)
        started = time.perf_counter()
        async with sessionmaker.begin() as session:
            await ingest.ingest_polls(session, polls)
        seconds = time.perf_counter() - started
        async with sessionmaker.begin() as session:
            await ingest.ingest_business_hours(session, hours)
            await ingest.ingest_timezones(session, zones)
    finally:
        await engine.dispose()
    return polls.height, seconds


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def service(url: str) -> Iterator[str]:
    """`store-monitor serve` and one `store-monitor worker` on a queue of their own."""
    port = _free_port()
    environment = {
        **os.environ,
        "STORE_MONITOR_DATABASE_URL": url,
        "STORE_MONITOR_REDIS_URL": REDIS_URL,
        "STORE_MONITOR_QUEUE_NAME": f"store-monitor-bench:{uuid4().hex[:8]}",
        "STORE_MONITOR_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "store_monitor.cli"]
    processes = [
        subprocess.Popen([*command, "serve", "--port", str(port)], env=environment),
        subprocess.Popen([*command, "worker"], env=environment),
    ]
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the service did not become ready within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)


def trigger_to_complete(base: str) -> tuple[float, str]:
    """Seconds from POST /trigger_report to a Complete report; the report's id."""
    with httpx.Client(base_url=base, timeout=60) as client:
        started = time.perf_counter()
        report_id = client.post("/trigger_report").raise_for_status().json()["report_id"]
        while True:
            status = client.get(f"/reports/{report_id}").raise_for_status().json()["status"]
            if status == "Complete":
                return time.perf_counter() - started, report_id
            if status == "Failed":
                raise RuntimeError(f"report {report_id} failed")
            time.sleep(0.02)


def download(base: str, report_id: str) -> tuple[float, float, int]:
    """Seconds to the first and the last byte of the CSV, and its size."""
    with httpx.Client(base_url=base, timeout=60) as client:
        started = time.perf_counter()
        first = None
        size = 0
        with client.stream("GET", f"/reports/{report_id}/csv") as response:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                if first is None:
                    first = time.perf_counter() - started
                size += len(chunk)
        return first or 0.0, time.perf_counter() - started, size


def run(root: Path, *, runs: int) -> None:
    eight_days = data_set(root, stores=14_000, days=8)
    offline = best_of(runs, lambda: full_report(eight_days, root / "report.csv"))

    with database() as url:
        _, seconds_ahead = asyncio.run(_ingest(url, eight_days, weeks_ahead=True))
    with database() as url:
        polls, seconds = asyncio.run(_ingest(url, eight_days))
        with service(url) as base:
            complete, report_id = min(trigger_to_complete(base) for _ in range(runs))
            first_byte, last_byte, size = min(download(base, report_id) for _ in range(runs))

    # Eight weeks of history: seven more 8-day sets of the same stores, each ending 8 days
    # before the previous one. The report still covers one week.
    with database() as url:
        for weeks_back in range(7):
            folder = eight_days if weeks_back == 0 else root / f"14000x8d-back{weeks_back}"
            if not (folder / frames.POLLS_FILE).exists():
                synthetic.generate(
                    folder,
                    stores=14_000,
                    days=8,
                    seed=7,
                    end=synthetic.DEFAULT_END - timedelta(days=8 * weeks_back),
                )
            asyncio.run(_ingest(url, folder))
        with service(url) as base:
            long_history, _ = min(trigger_to_complete(base) for _ in range(runs))

    print_table(
        f"Service (Postgres + Arq), 14,000 stores, best of {runs}",
        ["measure", "value", "target"],
        [
            [
                "polls ingest rate, new weeks (COPY)",
                f"{polls / seconds:,.0f} rows/s",
                ">= 500,000 rows/s",
            ],
            [
                "polls ingest rate, weeks made ahead",
                f"{polls / seconds_ahead:,.0f} rows/s",
                ">= 500,000 rows/s",
            ],
            ["offline report (same files, same run)", f"{offline:.2f} s", ""],
            ["trigger -> Complete, 8 days of polls", f"{complete:.2f} s", ""],
            ["  ratio to the offline report", f"{complete / offline:.2f}x", "<= 2x"],
            ["trigger -> Complete, 8 weeks of polls", f"{long_history:.2f} s", ""],
            ["  ratio to 8 days", f"{long_history / complete:.2f}x", "<= 1.3x"],
            ["CSV download, first byte", f"{first_byte * 1000:.0f} ms", ""],
            ["CSV download, last byte", f"{last_byte * 1000:.0f} ms ({size / 1e6:.1f} MB)", ""],
        ],
    )
