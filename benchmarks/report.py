"""The offline report against a plain CSV read of the same files, what incidents and daily figures
add to it, and its scaling in stores.

Timed as whole processes (interpreter start and imports included, as a user sees it), and in
process by phase: reading and validating the files against a plain read; the engine alone.
"""

import contextlib
import functools
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from benchmarks import targets
from benchmarks.table import print_table
from store_monitor import frames, synthetic
from store_monitor.cli import report
from store_monitor.engine import compute_report
from store_monitor.sources import read_business_hours, read_polls, read_timezones

FILES = (frames.POLLS_FILE, frames.HOURS_FILE, frames.TIMEZONES_FILE)


def data_set(root: Path, *, stores: int, days: int) -> Path:
    """A generated data set, made once and reused (the generator is deterministic)."""
    folder = root / f"{stores}x{days}d"
    if not (folder / frames.POLLS_FILE).exists():
        synthetic.generate(folder, stores=stores, days=days, seed=7)
    return folder


def best_of(runs: int, work: Callable[[], object]) -> float:
    """The fastest of `runs` wall-clock timings: the least disturbed by a shared machine."""
    return best_of_each(runs, work)[0]


def best_of_each(runs: int, *works: Callable[[], object]) -> list[float]:
    """The fastest of `runs` wall-clock timings of each work, taken in turns: on a shared
    machine a busy spell then slows every work rather than only the one measured at the time."""
    timings: list[list[float]] = [[] for _ in works]
    for _ in range(runs):
        for work, times in zip(works, timings, strict=True):
            started = time.perf_counter()
            work()
            times.append(time.perf_counter() - started)
    return [min(times) for times in timings]


def plain_read(folder: Path) -> None:
    # Store ids must be read as text: 19-digit ids overflow Int64, and inference fails on them.
    for name in FILES:
        pl.read_csv(folder / name, schema_overrides={"store_id": pl.String})


def validated_read(folder: Path) -> None:
    read_polls(folder / frames.POLLS_FILE, latest=datetime.now(UTC) + timedelta(days=1))
    read_business_hours(folder / frames.HOURS_FILE)
    read_timezones(folder / frames.TIMEZONES_FILE)


@dataclass(frozen=True)
class Process:
    seconds: float
    cpu_seconds: float
    """User and system time of all its threads: steadier than wall time on a busy machine."""
    peak_mib: float


def run_process(command: list[str]) -> Process:
    """Wall-clock and CPU time and peak resident memory of one whole process."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise subprocess.CalledProcessError(child.returncode, command)
    return Process(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def plain_read_command(folder: Path) -> list[str]:
    code = (
        "import sys, polars as pl\n"
        "for path in sys.argv[1:]:\n"
        "    pl.read_csv(path, schema_overrides={'store_id': pl.String})\n"
    )
    return [sys.executable, "-c", code, *(str(folder / name) for name in FILES)]


def report_command(folder: Path, output: Path) -> list[str]:
    # The console script's interpreter and module: what `store-monitor report` runs.
    return [
        sys.executable,
        "-m",
        "store_monitor.cli",
        "report",
        "--data",
        str(folder),
        "-o",
        str(output),
    ]


def best_processes(runs: int, *commands: list[str]) -> list[Process]:
    """Per command, the fastest of `runs` processes (and the largest peak memory), in turns."""
    results: list[list[Process]] = [[] for _ in commands]
    for _ in range(runs):
        for command, done in zip(commands, results, strict=True):
            done.append(run_process(command))
    return [
        Process(
            min(p.seconds for p in done),
            min(p.cpu_seconds for p in done),
            max(p.peak_mib for p in done),
        )
        for done in results
    ]


def full_report(
    folder: Path, output: Path, *, incidents: Path | None = None, daily: Path | None = None
) -> None:
    # The report's warnings (the generated unknown zone) would clutter the tables.
    with open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet):
        report(
            data=folder,
            polls=None,
            hours=None,
            timezones=None,
            as_of=None,
            output=output,
            incidents=incidents,
            daily=daily,
        )


def engine_timings(folder: Path, *, runs: int) -> tuple[float, float]:
    """The engine alone, in this process: the report, and the report with incidents and daily
    figures, timed in turns on frames read once."""
    polls = read_polls(folder / frames.POLLS_FILE)
    hours = read_business_hours(folder / frames.HOURS_FILE)
    zones = read_timezones(folder / frames.TIMEZONES_FILE)
    plain, detailed = best_of_each(
        runs,
        lambda: compute_report(polls, hours, zones, incidents_and_daily=False),
        lambda: compute_report(polls, hours, zones, incidents_and_daily=True),
    )
    return plain, detailed


def run(root: Path, *, runs: int) -> None:
    big = data_set(root, stores=14_000, days=8)
    out = root / "report.csv"
    polls = pl.scan_csv(big / frames.POLLS_FILE).select(pl.len()).collect().item()
    incidents, daily = root / "incidents.csv", root / "daily.csv"
    plain, whole, detailed = best_processes(
        runs,
        plain_read_command(big),
        report_command(big, out),
        [*report_command(big, out), "--incidents", str(incidents), "--daily", str(daily)],
    )
    read, validated = best_of_each(runs, lambda: plain_read(big), lambda: validated_read(big))
    engine_plain, engine_detailed = engine_timings(big, runs=max(runs, 5))
    ratio = whole.seconds / plain.seconds
    targets.record(
        "offline report process / plain polars.read_csv process (14,000 stores x 8 days)",
        f"{ratio:.2f}x",
        "<= 1.5x",
        met=ratio <= 1.5,
    )
    print_table(
        f"Offline report, 14,000 stores x 8 days ({polls:,} polls), best of {runs}",
        ["measure", "value", "target"],
        [
            ["process: plain polars.read_csv of the 3 files", f"{plain.seconds:.2f} s", ""],
            ["process: store-monitor report", f"{whole.seconds:.2f} s", ""],
            [
                "ratio report / plain read (processes)",
                f"{ratio:.2f}x",
                "<= 1.5x",
            ],
            [
                "  the same in CPU time",
                f"{whole.cpu_seconds:.2f} / {plain.cpu_seconds:.2f} s = "
                f"{whole.cpu_seconds / plain.cpu_seconds:.2f}x",
                "",
            ],
            ["in process: plain read of the 3 files", f"{read:.2f} s", ""],
            ["in process: read and validate the 3 files", f"{validated:.2f} s", ""],
            ["ratio validated / plain read (in process)", f"{validated / read:.2f}x", ""],
            ["peak memory of the report process", f"{whole.peak_mib:,.0f} MiB", "< 1,536 MiB"],
            ["process: report --incidents --daily", f"{detailed.seconds:.2f} s", ""],
            ["  ratio to the report alone", f"{detailed.seconds / whole.seconds:.2f}x", "<= 1.3x"],
            ["  peak memory of its process", f"{detailed.peak_mib:,.0f} MiB", "< 1,024 MiB"],
            ["engine alone: report", f"{engine_plain:.2f} s", ""],
            ["engine alone: with incidents and daily", f"{engine_detailed:.2f} s", ""],
            ["  ratio to the report alone", f"{engine_detailed / engine_plain:.2f}x", "<= 1.3x"],
        ],
    )

    rows = []
    for stores in (3_500, 7_000, 14_000):
        folder = data_set(root, stores=stores, days=8)
        seconds = best_of(runs, functools.partial(full_report, folder, out))
        rows.append([f"{stores:,}", f"{seconds:.2f} s", f"{seconds / stores * 1e6:.0f} µs"])
    print_table("Scaling in stores (8 days of polls)", ["stores", "report", "per store"], rows)
