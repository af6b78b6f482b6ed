"""Scale-out: one report of 56,000 stores x 8 days (about 9.8 M polls; `--scale-stores` for
more), offline and by the service unsharded and in 14,000-store shards on one and two workers,
each taking one job at a time (a worker's memory is then one shard's), and on two workers at
the default concurrency (`max_concurrent_jobs`: a worker may take several shards at once).

Measures each configuration's trigger -> Complete time and its processes' peak memory (VmHWM,
read just before each process stops) and an idle worker's (resident once started, before any
report), checks every CSV against the offline report's byte for byte (by digest), and prints the
per-store and per-poll costs the scaling guide is computed from.
"""

import asyncio
import contextlib
import hashlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from benchmarks import targets
from benchmarks.databases import autocommit, database, ingest_data_set
from benchmarks.processes import PeakMemory, service
from benchmarks.report import best_processes, data_set, report_command
from benchmarks.service import trigger_to_complete
from benchmarks.table import print_table
from store_monitor.db.models import Poll
from store_monitor.db.session import create_engine

STORES: Final = 56_000
DAYS: Final = 8
SHARDS: Final = 4
"""The sharded configurations split the stores into this many shards (14,000 stores each)."""
ONE_SHARD_STORES: Final = 1_000_000
"""A shard size beyond the data set: the report is one shard."""
WORKER_MEMORY_TARGET_MIB: Final = 1_536
TIME_RATIO_TARGET: Final = 1.2
POLL_SECONDS: Final = 0.5
"""The longest pause between status reads while a report runs (1% of the time so far until
then): every 20 ms, as the smaller benchmarks read, is 50 requests a second on the shared cores
for half a minute or more."""
REPORT_TIMEOUT_SECONDS: Final = 1_200
"""A report not Complete by then fails the benchmark rather than hanging it (e.g. shards that
wait for a job slot their parent holds)."""
MIB: Final = 1024 * 1024

_POLL_PARTITIONS_BYTES: Final = sa.text(
    "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits "
    "WHERE inhparent = CAST(:parent AS regclass)"
)


@dataclass(frozen=True)
class Configuration:
    name: str
    shard_stores: int
    """STORE_MONITOR_SHARD_STORES: the most stores a shard holds."""
    workers: int
    concurrent_jobs: int | None = 1
    """STORE_MONITOR_MAX_CONCURRENT_JOBS; None: the setting's default."""


@dataclass(frozen=True)
class Measured:
    configuration: Configuration
    seconds: float
    """trigger -> Complete, the best of the runs."""
    shards: int | None
    """The report's `shards_total`; None where the service does not tell (not sharding)."""
    digests: frozenset[str]
    """SHA-256 of each run's downloaded CSV."""
    memory: PeakMemory
    idle_worker: int | None
    """The largest of the workers' resident memory once started, before any report (in the
    first configuration measured, after the live evaluation the ingest queued)."""
    cpu: "CpuSeconds"
    """Of the last run, trigger to Complete."""

    def shard_stores(self, stores: int) -> int:
        """The stores of the largest shard the reports had."""
        return math.ceil(stores / (self.shards or 1))

    def above_idle_mib(self) -> float:
        """The worst worker's peak above an idle worker's."""
        return self.worker_mib() - (self.idle_worker or 0) / MIB

    def worker_mib(self) -> float:
        peak = self.memory.worst_worker
        return math.nan if peak is None else peak / MIB


@dataclass(frozen=True)
class CpuSeconds:
    """CPU time spent while a report ran, by the service's processes and by the rest of the
    machine: Postgres, mostly (and whatever else shares it, which the load average hints at)."""

    service: float
    rest: float


_TICKS: Final = os.sysconf("SC_CLK_TCK")


def _machine_busy_seconds() -> float:
    # The first line of /proc/stat: user nice system idle iowait irq softirq steal ...
    user, nice, system, _, _, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / _TICKS


def process_cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        # After the command's closing parenthesis: state is field 3, utime 14 and stime 15.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / _TICKS


async def database_cpu_seconds(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[int, float]:
    """CPU seconds so far of each server process connected to the sessions' database."""
    async with sessionmaker() as session:
        pids = await session.scalars(
            sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        )
        found = {}
        for pid in pids:
            with contextlib.suppress(OSError):  # gone meanwhile
                found[pid] = process_cpu_seconds([pid])
        return found


def spent_since(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two `database_cpu_seconds`; a server process that ended meanwhile is
    missed (connection pools keep theirs)."""
    return sum(spent - before.get(pid, 0.0) for pid, spent in after.items())


def _file_digest(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _csv_digest(client: httpx.Client, report_id: str) -> str:
    """The SHA-256 of a report's CSV, read a chunk at a time (never held whole)."""
    digest = hashlib.sha256()
    with client.stream("GET", f"/reports/{report_id}/csv") as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            digest.update(chunk)
    return digest.hexdigest()


async def _polls_bytes(url: str) -> int:
    """Postgres' size of the polls: every partition's table, indexes and TOAST."""
    engine = create_engine(url, process_name="store-monitor-bench")
    try:
        async with engine.connect() as connection:
            size = await connection.scalar(_POLL_PARTITIONS_BYTES, {"parent": Poll.__tablename__})
    finally:
        await engine.dispose()
    return int(size)


def _measure(url: str, configuration: Configuration, *, runs: int) -> Measured:
    peaks = PeakMemory()
    settings = {
        "shard_stores": str(configuration.shard_stores),
        **(
            {}
            if configuration.concurrent_jobs is None
            else {"max_concurrent_jobs": str(configuration.concurrent_jobs)}
        ),
        # A slow spell of the shared machine must not fail the one-shard report (about 25 s).
        "job_timeout_seconds": str(REPORT_TIMEOUT_SECONDS),
    }
    with service(url, workers=configuration.workers, settings=settings, peaks=peaks) as client:
        idle = _settled_resident_bytes(peaks.pids[1:])
        timings, digests = [], set()
        for _ in range(runs):
            machine, own = _machine_busy_seconds(), process_cpu_seconds(peaks.pids)
            seconds, report_id = trigger_to_complete(
                client, poll_seconds=POLL_SECONDS, timeout_seconds=REPORT_TIMEOUT_SECONDS
            )
            own = process_cpu_seconds(peaks.pids) - own
            cpu = CpuSeconds(service=own, rest=_machine_busy_seconds() - machine - own)
            timings.append(seconds)
            digests.add(_csv_digest(client, report_id))
        report = client.get(f"/reports/{report_id}").raise_for_status().json()
    return Measured(
        configuration,
        min(timings),
        report.get("shards_total"),
        frozenset(digests),
        peaks,
        idle,
        cpu,
    )


def _settled_resident_bytes(pids: list[int]) -> int | None:
    """The largest resident memory of the processes once it no longer grows (they have started:
    imports done, connections made), within 30 s."""
    last: list[int | None] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = [_resident_bytes(pid) for pid in pids]
        if now == last:
            break
        last = now
        time.sleep(1)
    return max((size for size in last if size is not None), default=None)


def _resident_bytes(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return None
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def _mib(peak: int | None) -> str:
    return "n/a" if peak is None else f"{peak / MIB:,.0f} MiB"


def run(root: Path, *, runs: int = 1, stores: int = STORES) -> None:
    """`runs`: how many reports each configuration computes (the best time is kept); each takes
    about 5 s at 56,000 stores (25 s at 280,000) on 2 shared cores, and the service is started
    for each configuration, so one by default."""
    load_before = os.getloadavg()
    folder = data_set(root, stores=stores, days=DAYS)
    offline_csv = root / f"scale-{stores}-report.csv"
    (offline,) = best_processes(runs, report_command(folder, offline_csv))
    offline_digest = _file_digest(offline_csv)
    offline_bytes = offline_csv.stat().st_size

    shard_stores = math.ceil(stores / SHARDS)
    configurations = [
        Configuration("unsharded, 1 worker", max(ONE_SHARD_STORES, stores), 1),
        Configuration(f"sharded ({shard_stores:,}), 1 worker", shard_stores, 1),
        Configuration(f"sharded ({shard_stores:,}), 2 workers", shard_stores, 2),
        Configuration(
            f"sharded ({shard_stores:,}), 2 workers, default concurrency", shard_stores, 2, None
        ),
    ]
    with database() as url:
        polls, ingest_seconds = asyncio.run(ingest_data_set(url, folder))
        # As autovacuum would, later: the freshly loaded pages' hint bits and the statistics,
        # else the first configuration measured pays for them and the others do not.
        asyncio.run(autocommit("VACUUM (ANALYZE)", url=url))
        polls_bytes = asyncio.run(_polls_bytes(url))
        unsharded, sharded, sharded_two, concurrent = (
            _measure(url, configuration, runs=runs) for configuration in configurations
        )
    measured = [unsharded, sharded, sharded_two, concurrent]
    load_after = os.getloadavg()

    if all(m.digests == {offline_digest} for m in measured):
        same = "yes"
    else:
        same = "no: " + ", ".join(
            f"{m.configuration.name} {'==' if m.digests == {offline_digest} else '!='} offline"
            + ("" if len(m.digests) == 1 else f" ({len(m.digests)} different CSVs)")
            for m in measured
        )
    shards = " / ".join("n/a" if m.shards is None else str(m.shards) for m in measured)
    # The least: the first configuration's workers also run the live evaluation the data's
    # ingest queued (of every store), as they start.
    idle_worker = min((m.idle_worker for m in measured if m.idle_worker is not None), default=None)
    sharded_worker = max(
        (peak for m in (sharded, sharded_two) if (peak := m.memory.worst_worker) is not None),
        default=None,
    )
    api_peak = max((m.memory.api for m in measured if m.memory.api is not None), default=None)
    ratio = sharded_two.seconds / unsharded.seconds
    title_runs = "measured once" if runs == 1 else f"best of {runs}"
    concurrent_peak = concurrent.memory.worst_worker
    targets.record(
        f"peak worker memory, {stores:,} stores in {shard_stores:,}-store shards, 2 workers, "
        "default concurrency",
        _mib(concurrent_peak),
        "< 600 MiB",
        met=concurrent_peak is not None and concurrent_peak < 600 * MIB,
    )
    print_table(
        f"Scale-out, {stores:,} stores x {DAYS} days ({polls:,} polls), {title_runs}; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after",
        ["measure", "value", "target"],
        [
            [
                "offline report (store-monitor report process)",
                f"{offline.seconds:.1f} s, peak {offline.peak_mib:,.0f} MiB",
                "",
            ],
            ["  its CSV", f"{offline_bytes:,} bytes", ""],
            [
                "polls ingest rate, new weeks (COPY)",
                f"{polls / ingest_seconds:,.0f} rows/s",
                ">= 500,000 rows/s",
            ],
            [
                "shards_total: unsharded / sharded 1 / sharded 2 / default concurrency",
                shards,
                "1 / 4 / 4 / 4",
            ],
            ["sharded CSV == unsharded CSV == offline CSV (byte for byte)", same, "yes"],
            ["peak worker memory, unsharded 1 worker", _mib(unsharded.memory.worst_worker), ""],
            [
                f"peak worker memory, sharded ({shard_stores:,}-store shards)",
                _mib(sharded_worker),
                f"< {WORKER_MEMORY_TARGET_MIB:,} MiB",
            ],
            [
                f"peak worker memory, sharded ({shard_stores:,}), 2 workers, default concurrency",
                _mib(concurrent_peak),
                "< 600 MiB (56,000 stores)",
            ],
            ["idle worker memory (started, before any report)", _mib(idle_worker), ""],
            ["peak API memory (any configuration)", _mib(api_peak), ""],
            *(
                [f"trigger -> Complete, {m.configuration.name}", f"{m.seconds:.1f} s", ""]
                for m in measured
            ),
            [
                "  ratio sharded 2 workers / unsharded 1",
                f"{ratio:.2f}x",
                f"<= {TIME_RATIO_TARGET}x",
            ],
        ],
    )

    per_million = polls / 1e6
    rows = [
        ["polls per store per day", f"{polls / stores / DAYS:.2f}"],
        ["offline report, s per 1 M polls", f"{offline.seconds / per_million:.3f} s"],
        ["ingest (COPY, new weeks), s per 1 M polls", f"{ingest_seconds / per_million:.3f} s"],
        [
            "Postgres polls (partitions + indexes), per 1 M polls",
            f"{polls_bytes / MIB / per_million:.1f} MiB ({polls_bytes / polls:.1f} bytes a poll;"
            f" {polls_bytes / MIB:,.0f} MiB in all)",
        ],
        ["report CSV, bytes per store", f"{offline_bytes / stores:.1f}"],
    ]
    for m in measured:
        shard = m.shard_stores(stores)
        rows += [
            [
                f"{m.configuration.name}: s per 1 M polls",
                f"{m.seconds / per_million:.3f} s",
            ],
            [
                f"{m.configuration.name}: CPU s per 1 M polls, API + workers / rest (Postgres)",
                f"{m.cpu.service / per_million:.3f} / {m.cpu.rest / per_million:.3f} s",
            ],
            [
                f"{m.configuration.name}: peak worker MiB per 1,000 stores of a shard",
                f"{m.worker_mib() / (shard / 1000):.2f} MiB ({shard:,}-store shard); "
                f"above an idle worker: {m.above_idle_mib() / (shard / 1000):.2f} MiB",
            ],
        ]
    # Two shard sizes measured: worker memory as a fixed part plus a part per store of a shard.
    big, small = unsharded.shard_stores(stores), sharded.shard_stores(stores)
    if big != small:
        slope = (unsharded.worker_mib() - sharded.worker_mib()) / (big - small)
        targets.record(
            "worker memory per 1,000 stores of a shard (the line through two shard sizes)",
            f"{slope * 1000:.2f} MiB",
            "<= 5 MiB",
            met=slope * 1000 <= 5,
        )
        rows.append(
            [
                "worker memory, the line through the two shard sizes (1 worker): its intercept "
                "(not an idle worker) + per 1,000 stores",
                f"{sharded.worker_mib() - slope * small:,.0f} MiB + "
                f"{slope * 1000:.2f} MiB per 1,000 stores",
            ]
        )
    else:
        rows.append(["worker memory = fixed + per store of a shard", "n/a: one shard size ran"])
    print_table("Per-store and per-poll costs (for docs/scaling.md)", ["measure", "value"], rows)
