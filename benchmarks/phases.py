"""Where a service report's time and memory go, phase by phase.

`python -m benchmarks.phases URL` runs the steps of `ReportAttempt.work` one at a time, as the
worker does, against the database at URL (its every store), in a process of its own so that its
memory is a worker's: per phase, the wall time, the CPU time of this process and of its Postgres
backends, and the peak resident memory (sampled every millisecond). The service's side (queued,
the worker's time, the API's) comes from the report's own timestamps.
"""

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, TypeVar

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from benchmarks import targets
from benchmarks.table import print_table
from store_monitor.db.models import Report, ReportStatus
from store_monitor.db.report_files import encode_report_csv, store_report_file
from store_monitor.db.report_inputs import (
    ReportInputs,
    StoreRange,
    load_report_inputs,
    store_ranges,
)
from store_monitor.db.report_results import replace_report_results
from store_monitor.db.session import create_engine, create_sessionmaker, reading
from store_monitor.engine import compute_report, incident_counts
from store_monitor.memory import release_freed_heap
from store_monitor.webhooks.report_events import announce_completed
from store_monitor.work.lease import finished_values

MIB: Final = 1024 * 1024
_PAGE: Final = os.sysconf("SC_PAGE_SIZE")
_TICKS: Final = os.sysconf("SC_CLK_TCK")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float
    cpu_seconds: float
    """This process's CPU time (all threads) in the phase."""
    postgres_cpu_seconds: float
    """The CPU time of the Postgres backends this process used, in the phase."""
    peak_bytes: int
    """The process's peak resident memory within the phase."""
    polls: int = 0
    """The polls the phase read (the read's), else 0."""


def _resident_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * _PAGE


def _cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:  # a backend that has just exited
        return 0.0
    # After the command's closing parenthesis: utime is field 14 and stime 15.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _backends(database: str) -> list[int]:
    """The local Postgres backends serving `database` (their titles name it)."""
    pids = []
    for process in Path("/proc").iterdir():
        if process.name.isdigit():
            try:
                title = (process / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"postgres: ") and f" {database} ".encode() in title:
                pids.append(int(process.name))
    return pids


class _Recorder:
    """Times phases; a thread samples the resident memory for each one's peak."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.phases: list[Phase] = []
        self._peak = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            self._peak = max(self._peak, _resident_bytes())

    def close(self) -> None:
        self._stop.set()
        self._sampler.join()

    def _postgres_cpu(self) -> float:
        return sum(_cpu_seconds(pid) for pid in _backends(self.database))

    async def time(
        self, name: str, work: Callable[[], Awaitable[_T]], polls: Callable[[_T], int] | None = None
    ) -> _T:
        self._peak = _resident_bytes()
        cpu, postgres = time.process_time(), self._postgres_cpu()
        started = time.perf_counter()
        value = await work()
        seconds = time.perf_counter() - started
        self.phases.append(
            Phase(
                name,
                seconds,
                time.process_time() - cpu,
                self._postgres_cpu() - postgres,
                max(self._peak, _resident_bytes()),
                0 if polls is None else polls(value),
            )
        )
        return value


async def _report(sessionmaker: async_sessionmaker[AsyncSession], recorder: _Recorder) -> None:
    """One report of every store, its phases recorded."""
    async with sessionmaker.begin() as session:
        report = Report(status=ReportStatus.running, attempts=1)
        session.add(report)
    report_id = report.id

    async def plan() -> list[StoreRange]:
        async with reading(sessionmaker) as session:
            return await store_ranges(session, per_range=sys.maxsize)

    async def read() -> ReportInputs:
        async with sessionmaker() as session:
            return await load_report_inputs(session, as_of=None)

    await recorder.time("plan", plan)
    inputs = await recorder.time("read", read, lambda inputs: inputs.polls.height)
    release_freed_heap()  # as `shards.compute_stores` does between its read and the engine
    result = await recorder.time(
        "compute",
        lambda: asyncio.to_thread(
            compute_report, inputs.polls, inputs.business_hours, inputs.timezones, as_of=inputs.now
        ),
    )
    assert result.incidents is not None
    assert result.daily is not None
    incidents, daily = result.incidents, result.daily
    async with sessionmaker.begin() as session:
        await recorder.time(
            "fenced status",
            lambda: session.execute(
                sa.update(Report).where(Report.id == report_id).values(finished_values())
            ),
        )
        # The service overlaps this with the writes below (see `report_runs.write_complete`).
        encoded = await recorder.time(
            "file: CSV, gzip (beside the writes)",
            lambda: asyncio.to_thread(encode_report_csv, result.rows),
        )
        await recorder.time("file: insert", lambda: store_report_file(session, report_id, encoded))
        assert result.now is not None
        counts = incident_counts(incidents, now=result.now)
        await recorder.time(
            "rows, incidents, days (each one's CSV made while the one before is written)",
            lambda: replace_report_results(
                session,
                report_id,
                rows=result.rows,
                incidents=incidents,
                daily=daily,
                incident_counts=counts,
            ),
        )
        await recorder.time(
            "announce", lambda: announce_completed(session, report_id, public_url="")
        )
        await recorder.time("commit", session.commit)


async def _measure(url: str) -> list[Phase]:
    engine = create_engine(url, process_name="store-monitor-bench")
    database = sa.make_url(url).database
    assert database is not None
    recorder = _Recorder(database)
    try:
        await _report(create_sessionmaker(engine), recorder)
    finally:
        recorder.close()
        await engine.dispose()
    return recorder.phases


def measure(url: str, *, runs: int) -> list[Phase]:
    """The phases of `runs` reports, each in a new process: per phase the best time and CPU
    time, and the highest peak."""
    runs_phases = []
    for _ in range(runs):
        output = subprocess.run(
            [sys.executable, "-m", "benchmarks.phases", url],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        runs_phases.append([Phase(**phase) for phase in json.loads(output)])
    return [
        Phase(
            same[0].name,
            min(phase.seconds for phase in same),
            min(phase.cpu_seconds for phase in same),
            min(phase.postgres_cpu_seconds for phase in same),
            max(phase.peak_bytes for phase in same),
            same[0].polls,
        )
        for same in zip(*runs_phases, strict=True)
    ]


@dataclass(frozen=True)
class ServiceSide:
    """One service report's timeline, on the machine's one clock: the client's instants and
    the report's own timestamps."""

    triggered: datetime
    """When the client sent POST /trigger_report."""
    total: float
    """trigger -> Complete, as the client saw it."""
    created: datetime
    started: datetime
    finished: datetime
    """Stamped by the worker's final transaction as it begins: before its writes."""
    downloaded: float = 0.0
    """trigger -> the CSV downloaded, as the client saw it."""

    @property
    def trigger(self) -> float:
        """The trigger's request until the report's row was made."""
        return (self.created - self.triggered).total_seconds()

    @property
    def queued(self) -> float:
        return (self.started - self.created).total_seconds()

    @property
    def worker(self) -> float:
        """The job until its final transaction: read and compute."""
        return (self.finished - self.started).total_seconds()

    @property
    def final(self) -> float:
        """The final transaction (results, file, commit), then the status read that saw
        Complete (the client reads it every 20 ms)."""
        return self.total - (self.finished - self.triggered).total_seconds()


def service_side(
    client: httpx.Client, report_id: str, triggered: datetime, seconds: float
) -> ServiceSide:
    """The timeline of a report triggered at `triggered`, seen Complete `seconds` later."""
    report = client.get(f"/reports/{report_id}").raise_for_status().json()
    created, started, finished = (
        datetime.fromisoformat(report[name]) for name in ("created_at", "started_at", "finished_at")
    )
    return ServiceSide(triggered, seconds, created, started, finished)


def print_phases(
    title: str, phases: list[Phase], side: ServiceSide, offline_process: float
) -> None:
    """The phases measured in process, then the service's timeline of its best download."""

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:,.0f} ms"

    rows = [
        [
            phase.name,
            ms(phase.seconds),
            ms(phase.cpu_seconds),
            ms(phase.postgres_cpu_seconds),
            f"{phase.peak_bytes / MIB:,.0f} MiB",
        ]
        for phase in phases
    ]
    rows.append(
        [
            "  all phases, one after the other",
            ms(sum(phase.seconds for phase in phases)),
            ms(sum(phase.cpu_seconds for phase in phases)),
            ms(sum(phase.postgres_cpu_seconds for phase in phases)),
            f"{max(phase.peak_bytes for phase in phases) / MIB:,.0f} MiB",
        ]
    )
    for phase in phases:
        if phase.polls:
            per_million = phase.postgres_cpu_seconds / phase.polls * 1e6
            targets.record(
                "Postgres CPU per 1 M polls a report reads (14,000 stores x 8 days)",
                f"{per_million:.2f} s",
                "<= 0.25 s",
                met=per_million <= 0.25,
            )
            rows.append(
                [
                    f"  {phase.name}: Postgres CPU per 1 M polls read (target <= 0.25 s)",
                    f"{per_million:.2f} s",
                    "",
                    "",
                    "",
                ]
            )
    rows += [
        [f"service: {name}", ms(seconds), "", "", ""]
        for name, seconds in (
            ("trigger (its request -> report created)", side.trigger),
            ("queued (created -> started)", side.queued),
            ("worker (started -> finished: read, compute)", side.worker),
            ("final transaction, commit, seeing Complete", side.final),
            ("trigger -> Complete", side.total),
            ("trigger -> CSV downloaded", side.downloaded),
        )
    ]
    rows.append(["offline: store-monitor report process", ms(offline_process), "", "", ""])
    ratio = side.downloaded / offline_process
    targets.record(
        "trigger -> CSV downloaded / offline report process (14,000 stores x 8 days)",
        f"{ratio:.2f}x",
        "<= 1.2x",
        met=ratio <= 1.2,
    )
    rows.append(
        [
            "  ratio: CSV downloaded / offline process (target <= 1.2x)",
            f"{ratio:.2f}x",
            "",
            "",
            "",
        ]
    )
    print_table(title, ["phase", "time", "CPU", "Postgres CPU", "peak resident"], rows)


if __name__ == "__main__":
    print(json.dumps([asdict(phase) for phase in asyncio.run(_measure(sys.argv[1]))]))
