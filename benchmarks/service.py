"""The Postgres + Arq service end to end: ingest rate, trigger-to-Complete, CSV download.

Runs the real processes (`store-monitor serve` and `store-monitor worker`) against a Postgres
database made for the run and dropped after it, and compares with the offline report on the
same files, in the same run.
"""

# long: the harness every service benchmark shares (database, processes, peaks), and this one.

import asyncio
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from benchmarks import phases
from benchmarks.report import best_of, best_processes, data_set, full_report, report_command
from benchmarks.table import print_table
from store_monitor import access, frames, ingest
from store_monitor.db.migrations import upgrade_to_head
from store_monitor.db.models import KeyScope
from store_monitor.db.partitions import make_poll_weeks_ahead
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.sources import read_business_hours, read_polls, read_timezones

ADMIN_URL = os.environ.get(
    "STORE_MONITOR_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("STORE_MONITOR_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


async def autocommit(statement: str, *, url: str = ADMIN_URL) -> None:
    """Run one statement outside a transaction (CREATE DATABASE, VACUUM)."""
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with admin.connect() as connection:
            await connection.execute(sa.text(statement))
    finally:
        await admin.dispose()


@contextmanager
def database(source: Path | None = None) -> Iterator[str]:
    """A fresh database at the latest schema, dropped afterwards; `source`: that of the
    revision whose `src` folder this is (beside its `alembic` folder)."""
    name = f"store_monitor_bench_{uuid4().hex[:8]}"
    asyncio.run(autocommit(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        if source is None:
            asyncio.run(upgrade_to_head(url))
        else:
            upgrade = (
                "import asyncio, sys; from store_monitor.db.migrations import upgrade_to_head; "
                "asyncio.run(upgrade_to_head(sys.argv[1]))"
            )
            subprocess.run(
                [sys.executable, "-c", upgrade, url],
                env={**os.environ, "PYTHONPATH": str(source)},
                check=True,
            )
        yield url
    finally:
        asyncio.run(autocommit(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def ingest_data_set(
    url: str, folder: Path, *, weeks_ahead: bool = False
) -> tuple[int, float]:
    """Load one generated data set; the polls' count and the seconds their load took.

    `weeks_ahead`: the polls' weekly tables are made (empty) first, as the maintenance does for
    live polls; otherwise the load makes them (a backfill)."""
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
                await make_poll_weeks_ahead(session, start=first, through=last)
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


async def _new_key(url: str, server_key: str) -> str:
    engine = create_engine(url, process_name="store-monitor-bench")
    try:
        async with create_sessionmaker(engine).begin() as session:
            created = await access.create_key(
                session,
                server_key=server_key.encode(),
                name=f"bench-{uuid4().hex[:8]}",
                scope=KeyScope.admin,
                now=datetime.now(UTC),
            )
    finally:
        await engine.dispose()
    return created.secret


_COMMAND = (sys.executable, "-m", "store_monitor.cli")


def _environment(**settings: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("STORE_MONITOR_")}
    environment.update({f"STORE_MONITOR_{k.upper()}": v for k, v in settings.items()})
    return {**environment, "STORE_MONITOR_LOG_LEVEL": "WARNING"}


def vm_hwm_bytes(status: str) -> int | None:
    """The peak resident memory (`VmHWM`) in a `/proc/<pid>/status` text, in bytes; None when
    the text has none (a process that has exited: a zombie's status has no memory lines)."""
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name == "VmHWM":
            number, unit = value.split()
            if unit != "kB":
                raise ValueError(f"VmHWM in {unit!r}, not kB")
            return int(number) * 1024
    return None


def peak_resident_bytes(pid: int) -> int | None:
    """A running process's peak resident memory so far; None once it has exited."""
    try:
        return vm_hwm_bytes(Path(f"/proc/{pid}/status").read_text())
    except FileNotFoundError:
        return None


@dataclass
class PeakMemory:
    """Peak resident memory (bytes) of a service's processes, read by `read`: by the service
    just before it stops them, and by its user whenever it likes (e.g. idle, after start)."""

    pids: list[int] = field(default_factory=list)
    """The API's, then each worker's, while they run."""
    api: int | None = None
    workers: list[int | None] = field(default_factory=list)

    def read(self) -> None:
        self.api, *self.workers = (peak_resident_bytes(pid) for pid in self.pids)

    @property
    def worst_worker(self) -> int | None:
        return max((peak for peak in self.workers if peak is not None), default=None)


@contextmanager
def service(
    url: str,
    *,
    workers: int = 1,
    settings: Mapping[str, str] | None = None,
    peaks: PeakMemory | None = None,
    source: Path | None = None,
) -> Iterator[httpx.Client]:
    """`store-monitor serve` and `workers` `store-monitor worker` processes on a queue of their
    own, keys required as in production; a client of it that sends an admin key.

    `settings`: more of every process's settings, by name (`{"max_concurrent_jobs": "1"}`).
    `peaks`, if given, is filled with the processes' peak memory as they stop. `source`: the
    `src` folder of another revision of the package, run instead of this one."""
    server_key = secrets.token_urlsafe(32)
    environment = _environment(
        database_url=url,
        redis_url=REDIS_URL,
        queue_name=f"store-monitor-bench:{uuid4().hex[:8]}",
        auth="required",
        secret_key=server_key,
        **(settings or {}),
    )
    if source is not None:
        environment["PYTHONPATH"] = str(source)
    key = asyncio.run(_new_key(url, server_key))
    with _processes(environment, workers=workers, key=key, peaks=peaks) as client:
        yield client


@contextmanager
def embedded_data_dir(root: Path, data: Path) -> Iterator[Path]:
    """A new embedded data directory holding the files of `data`, loaded by the CLI."""
    data_dir = root / f"embedded-{uuid4().hex[:8]}"
    environment = _environment(data_dir=str(data_dir), sample_data="false")
    try:
        subprocess.run([*_COMMAND, "ingest", "--data", str(data)], env=environment, check=True)
        yield data_dir
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.with_name(data_dir.name + ".lock").unlink(missing_ok=True)


@contextmanager
def embedded_service(data_dir: Path) -> Iterator[httpx.Client]:
    """`store-monitor serve` in the embedded mode (open, on 127.0.0.1), on `data_dir`."""
    environment = _environment(data_dir=str(data_dir), sample_data="false")
    with _processes(environment, workers=0, key=None) as client:
        yield client


@contextmanager
def _processes(
    environment: dict[str, str], *, workers: int, key: str | None, peaks: PeakMemory | None = None
) -> Iterator[httpx.Client]:
    port = _free_port()
    processes = [
        subprocess.Popen([*_COMMAND, "serve", "--port", str(port)], env=environment),
        *(subprocess.Popen([*_COMMAND, "worker"], env=environment) for _ in range(workers)),
    ]
    if peaks is not None:
        peaks.pids = [process.pid for process in processes]
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
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, timeout=60, headers=headers) as client:
            yield client
    finally:
        if peaks is not None:
            peaks.read()
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)


def trigger_to_complete(
    client: httpx.Client, *, poll_seconds: float = 0.02, timeout_seconds: float | None = None
) -> tuple[float, str]:
    """Seconds from POST /trigger_report to a Complete report; the report's id. The status is
    read every 20 ms, or for a longer report every 1% of the time so far up to `poll_seconds`:
    the measure's resolution, and a load on the API. Raises TimeoutError after
    `timeout_seconds` (None: waits as long as the report is neither Complete nor Failed)."""
    started = time.perf_counter()
    report_id = client.post("/trigger_report").raise_for_status().json()["report_id"]
    while True:
        report = client.get(f"/reports/{report_id}").raise_for_status().json()
        if report["status"] == "Complete":
            return time.perf_counter() - started, report_id
        if report["status"] == "Failed":
            raise RuntimeError(f"report {report_id} failed: {report['error']}")
        if timeout_seconds is not None and time.perf_counter() - started > timeout_seconds:
            raise TimeoutError(f"report {report_id} not Complete after {timeout_seconds:g} s")
        time.sleep(min(poll_seconds, max(0.02, (time.perf_counter() - started) / 100)))


def download(client: httpx.Client, report_id: str) -> tuple[float, float, int]:
    """Seconds to the first and the last byte of the CSV, and its size."""
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


def store_pages(client: httpx.Client, report_id: str, *, stores: int = 20) -> dict[str, float]:
    """Median seconds to answer, over `stores` stores spread through the report: a store's JSON
    (`GET /reports/{id}/stores/{store}`) and its dashboard page; and the dashboard's report
    page, its first page (worst first) and a page deep in the id order."""
    ids = [
        line.partition(",")[0]
        for line in client.get(f"/reports/{report_id}/csv").raise_for_status().text.splitlines()[1:]
    ]
    chosen = ids[:: max(1, len(ids) // stores)][:stores]

    def median(paths: list[str]) -> float:
        seconds = []
        for path in paths:
            started = time.perf_counter()
            client.get(path).raise_for_status()
            seconds.append(time.perf_counter() - started)
        return statistics.median(seconds)

    # The dashboard takes the key once, at sign-in; then its session cookie.
    sign_in = client.get("/ui/sign-in").raise_for_status().text
    token = re.search(r'name="csrf-token" content="([^"]+)"', sign_in)
    assert token is not None
    key = client.headers["Authorization"].removeprefix("Bearer ")
    signed_in = client.post("/ui/sign-in", data={"key": key, "csrf_token": token[1]})
    if signed_in.status_code != 303:
        raise RuntimeError(f"dashboard sign-in answered {signed_in.status_code}")
    report = f"/reports/{report_id}"
    return {
        "json": median([f"{report}/stores/{store}" for store in chosen]),
        "page": median([f"/ui{report}/stores/{store}" for store in chosen]),
        "report page": median([f"/ui{report}"] * 5),
        "deep page": median([f"/ui{report}?sort=store_id&order=asc&page=200"] * 5),
    }


def run(root: Path, *, runs: int) -> None:
    eight_days = data_set(root, stores=14_000, days=8)
    offline = best_of(runs, lambda: full_report(eight_days, root / "report.csv"))
    (offline_process,) = best_processes(runs, report_command(eight_days, root / "report.csv"))

    with database() as url:
        _, seconds_ahead = asyncio.run(ingest_data_set(url, eight_days, weeks_ahead=True))
    with database() as url:
        polls, seconds = asyncio.run(ingest_data_set(url, eight_days))
        with service(url) as client:
            sides = []
            for _ in range(runs):
                seconds, report_id = trigger_to_complete(client)
                side = phases.service_side(client, report_id, seconds)
                sides.append(replace(side, downloaded=seconds + download(client, report_id)[1]))
            complete = min(side.total for side in sides)
            first_byte, last_byte, size = min(download(client, report_id) for _ in range(runs))
            pages = store_pages(client, report_id)
        report_phases = phases.measure(url, runs=runs)
        load = os.getloadavg()

    with embedded_data_dir(root, eight_days) as data_dir, embedded_service(data_dir) as client:
        embedded, _ = min(trigger_to_complete(client) for _ in range(runs))

    print_table(
        f"Service (Postgres + Arq, and embedded), 14,000 stores, best of {runs}",
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
            ["CSV download, first byte", f"{first_byte * 1000:.0f} ms", ""],
            ["CSV download, last byte", f"{last_byte * 1000:.0f} ms ({size / 1e6:.1f} MB)", ""],
            [
                "store JSON (GET /reports/{id}/stores/{store})",
                f"{pages['json'] * 1000:.0f} ms",
                "< 50 ms",
            ],
            ["dashboard store page", f"{pages['page'] * 1000:.0f} ms", "< 50 ms"],
            ["dashboard report page, worst first", f"{pages['report page'] * 1000:.0f} ms", ""],
            ["dashboard report page 200, by id", f"{pages['deep page'] * 1000:.0f} ms", ""],
            ["embedded mode: trigger -> Complete, 8 days", f"{embedded:.2f} s", ""],
            ["  ratio to Postgres + Arq", f"{embedded / complete:.2f}x", ""],
        ],
    )
    phases.print_phases(
        f"A service report's phases, 14,000 stores x 8 days, best of {runs}; "
        f"load average {load[0]:.1f}",
        report_phases,
        min(sides, key=lambda side: side.downloaded),
        offline_process.seconds,
    )
