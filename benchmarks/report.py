"""The offline report against a plain CSV read of the same files, what incidents and daily figures
add to it, and its scaling in stores."""

import contextlib
import functools
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

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


def peak_memory_mib(folder: Path, output: Path, *options: str) -> float:
    """Peak resident memory of a `store-monitor report` process, in MiB.

    Each measure runs in a process of its own: a child's peak is counted once it has been
    waited for, and RUSAGE_CHILDREN keeps the largest of them.
    """
    command = [sys.executable, "-m", "store_monitor.cli", "report", "--data", str(folder)]
    probe = [sys.executable, "-c", _PEAK_OF_CHILD, *command, "-o", str(output), *options]
    done = subprocess.run(probe, check=True, stderr=subprocess.DEVNULL, stdout=subprocess.PIPE)
    return float(done.stdout) / 1024


# Runs the command given and prints its peak resident memory in KiB: separate from this process's
# other children, whose peak RUSAGE_CHILDREN would otherwise report.
_PEAK_OF_CHILD = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
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
    read, full, detailed = best_of_each(
        runs,
        lambda: plain_read(big),
        lambda: full_report(big, out),
        lambda: full_report(big, out, incidents=incidents, daily=daily),
    )
    engine_plain, engine_detailed = engine_timings(big, runs=max(runs, 5))
    memory = peak_memory_mib(big, out)
    detailed_memory = peak_memory_mib(
        big, out, "--incidents", str(incidents), "--daily", str(daily)
    )
    print_table(
        f"Offline report, 14,000 stores x 8 days ({polls:,} polls), best of {runs}",
        ["measure", "value", "target"],
        [
            ["plain polars.read_csv of the 3 files", f"{read:.2f} s", ""],
            ["store-monitor report (read, compute, write)", f"{full:.2f} s", ""],
            ["ratio report / plain read", f"{full / read:.2f}x", "<= 2.5x"],
            ["peak memory of the report process", f"{memory:,.0f} MiB", "< 1,536 MiB"],
            ["report --incidents --daily (3 files written)", f"{detailed:.2f} s", ""],
            ["  ratio to the report alone", f"{detailed / full:.2f}x", "<= 1.3x"],
            ["  peak memory of its process", f"{detailed_memory:,.0f} MiB", "< 1,024 MiB"],
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
