"""The offline report against a plain CSV read of the same files, and its scaling in stores."""

import contextlib
import functools
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from benchmarks.table import print_table
from store_monitor import frames, synthetic
from store_monitor.cli import report

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


def full_report(folder: Path, output: Path) -> None:
    # The report's warnings (the generated unknown zone) would clutter the tables.
    with open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet):
        report(data=folder, polls=None, hours=None, timezones=None, as_of=None, output=output)


def peak_memory_mib(folder: Path, output: Path) -> float:
    """Peak resident memory of a `store-monitor report` process, in MiB."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "store_monitor.cli",
            "report",
            "--data",
            str(folder),
            "-o",
            str(output),
        ],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run(root: Path, *, runs: int) -> None:
    big = data_set(root, stores=14_000, days=8)
    out = root / "report.csv"
    polls = pl.scan_csv(big / frames.POLLS_FILE).select(pl.len()).collect().item()
    read, full = best_of_each(runs, lambda: plain_read(big), lambda: full_report(big, out))
    memory = peak_memory_mib(big, out)
    print_table(
        f"Offline report, 14,000 stores x 8 days ({polls:,} polls), best of {runs}",
        ["measure", "value", "target"],
        [
            ["plain polars.read_csv of the 3 files", f"{read:.2f} s", ""],
            ["store-monitor report (read, compute, write)", f"{full:.2f} s", ""],
            ["ratio report / plain read", f"{full / read:.2f}x", "<= 2.5x"],
            ["peak memory of the report process", f"{memory:,.0f} MiB", "< 1,536 MiB"],
        ],
    )

    rows = []
    for stores in (3_500, 7_000, 14_000):
        folder = data_set(root, stores=stores, days=8)
        seconds = best_of(runs, functools.partial(full_report, folder, out))
        rows.append([f"{stores:,}", f"{seconds:.2f} s", f"{seconds / stores * 1e6:.0f} µs"])
    print_table("Scaling in stores (8 days of polls)", ["stores", "report", "per store"], rows)
