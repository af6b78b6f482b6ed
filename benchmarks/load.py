"""Status reads under load: the API and 2 workers on 14,000 stores, while 20 clients download
CSVs back to back and both workers compute reports back to back.

The load comes from wrk (compiled; `benchmarks.wrk`), two processes at once:
- status reads, `GET /reports/{id}`, at a fixed rate (open loop): each of the connections sends
  its reads on a schedule of its own, and a read's latency counts from when it was due, so a
  server that stalls cannot hide behind connections left waiting (no coordinated omission).
  wrk's own latency, counted from each send (closed loop), is shown beside it;
- CSV downloads, closed loop: 20 connections, each asking for the next CSV (every other one
  gzipped) once the last has arrived; a body cut short is one of wrk's read errors.
Python only keeps the workers busy: a trigger, then a status read every half second.
"""

import asyncio
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import httpx

from benchmarks import targets, wrk
from benchmarks.databases import database, ingest_data_set
from benchmarks.processes import PeakMemory, Scheduling, service
from benchmarks.report import data_set
from benchmarks.table import print_table

READS_PER_SECOND: Final = 300
READ_CONNECTIONS: Final = 64
"""Enough that a fixed rate of 300/s holds with answers taking up to 200 ms on average."""
DOWNLOADERS: Final = 20
DOWNLOAD_THREADS: Final = 2
WORKERS: Final = 2
P99_TARGET_MS: Final = 250
WATCH_SECONDS: Final = 0.5
"""How often the workers' reports are read: enough to queue the next one soon after."""


def _trigger(client: httpx.Client) -> str:
    """A new report's id; waits out the trigger rate if it refuses."""
    while (answer := client.post("/trigger_report")).status_code == 429:
        time.sleep(int(answer.headers.get("Retry-After", "1")))
    report_id: str = answer.raise_for_status().json()["report_id"]
    return report_id


def _completes(client: httpx.Client, report_id: str, stop: threading.Event) -> bool:
    """Whether the report completes before `stop` is set."""
    while not stop.wait(WATCH_SECONDS):
        status = client.get(f"/reports/{report_id}").raise_for_status().json()["status"]
        if status == "Complete":
            return True
        if status == "Failed":
            raise RuntimeError(f"report {report_id} failed")
    return False


def _compute_until(base: str, headers: dict[str, str], first: str, stop: threading.Event) -> int:
    """Reports computed one after another, from `first` on, until `stop`; how many completed."""
    computed = 0
    report_id = first
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        while _completes(client, report_id, stop):
            computed += 1
            report_id = _trigger(client)
    return computed


def _load(
    client: httpx.Client, *, api_pid: int, rate: int, seconds: int, connections: int
) -> tuple[Any, Any, int, tuple[float, float]]:
    """wrk's figures for the reads and for the downloads; the reports computed meanwhile; the
    shares of the reads' time the API's event loop spent on a CPU, and waiting for one."""
    finished = [_trigger(client) for _ in range(WORKERS)]
    for report_id in finished:
        _completes(client, report_id, threading.Event())
    computing = [_trigger(client) for _ in range(WORKERS)]
    base = str(client.base_url)
    headers = {"Authorization": client.headers["Authorization"]}
    stop = threading.Event()
    with ThreadPoolExecutor(WORKERS) as pool:
        watchers = [pool.submit(_compute_until, base, headers, first, stop) for first in computing]
        api_before, started = Scheduling.of(api_pid), time.monotonic()
        reading = wrk.start(
            wrk.Load(
                "reads",
                base,
                seconds=seconds,
                connections=connections,
                threads=connections,
                headers=headers,
                arguments=[str(rate), str(connections), *finished, *computing],
            )
        )
        try:
            downloads = wrk.run(
                wrk.Load(
                    "downloads",
                    base,
                    seconds=seconds,
                    connections=DOWNLOADERS,
                    threads=DOWNLOAD_THREADS,
                    headers=headers,
                    arguments=finished,
                )
            )
            reads = wrk.result(reading)
            api_after, elapsed = Scheduling.of(api_pid), time.monotonic() - started
        finally:
            reading.kill()
            stop.set()
        computed = sum(watcher.result() for watcher in watchers)
    api = (
        (api_after.running - api_before.running) / elapsed,
        (api_after.waiting - api_before.waiting) / elapsed,
    )
    return reads, downloads, computed, api


def run(
    root: Path,
    *,
    seconds: float,
    rate: int = READS_PER_SECOND,
    connections: int = READ_CONNECTIONS,
) -> None:
    wrk.ensure_installed()
    whole_seconds = max(1, math.ceil(seconds))
    eight_days = data_set(root, stores=14_000, days=8)
    with database() as url:
        asyncio.run(ingest_data_set(url, eight_days))
        load_before = os.getloadavg()[0]
        peaks = PeakMemory()
        with service(url, workers=WORKERS, peaks=peaks) as client:
            reads, downloads, computed, (api_running, api_waiting) = _load(
                client,
                api_pid=peaks.pids[0],
                rate=rate,
                seconds=whole_seconds,
                connections=connections,
            )
        load_after = os.getloadavg()[0]

    answered = sum(count for status, count in reads["statuses"].items() if status.startswith("2"))
    read_errors = {
        **{f"HTTP {s}": n for s, n in reads["statuses"].items() if not s.startswith("2")},
        **{kind: n for kind, n in wrk.errors(reads).items() if kind != "status"},
    }
    download_errors = wrk.described(wrk.errors(downloads))
    due, elapsed = rate * whole_seconds, reads["duration_seconds"]
    latency, from_send = reads["latency_ms"], reads["latency_from_send_ms"]
    p99 = latency.get("p99", math.nan)
    targets.record(
        f"status reads under load, fixed rate {rate}/s, while {WORKERS} workers compute",
        f"{answered / elapsed:.0f}/s, p99 {p99:.0f} ms from when due",
        f">= {rate}/s, p99 <= {P99_TARGET_MS} ms",
        met=answered >= due * 0.99 and p99 <= P99_TARGET_MS,
    )
    print_table(
        f"Status reads while downloading: API + {WORKERS} workers, 14,000 stores, "
        f"{whole_seconds} s; load by wrk; load average {load_before:.1f} before, "
        f"{load_after:.1f} after",
        ["measure", "value", "target"],
        [
            [
                f"status reads, fixed rate, {connections} connections",
                f"{answered:,} of {due:,} due ({answered / elapsed:.0f}/s)",
                f">= {rate}/s",
            ],
            ["  p50, from when due", f"{latency.get('p50', math.nan):.0f} ms", ""],
            [
                "  p99, from when due",
                f"{latency.get('p99', math.nan):.0f} ms",
                f"<= {P99_TARGET_MS} ms",
            ],
            ["  max, from when due", f"{latency.get('max', math.nan):.0f} ms", ""],
            ["  p99 from the send (wrk's own, closed loop)", f"{from_send['p99']:.0f} ms", ""],
            ["  errors (non-2xx, sockets, timeouts)", wrk.described(read_errors), "0"],
            [
                f"CSV downloads, {DOWNLOADERS} connections back to back (half gzip)",
                f"{downloads['requests']:,} ({downloads['requests'] / elapsed:.1f}/s, "
                f"{downloads['bytes'] / 1e6 / downloads['duration_seconds']:.0f} MB/s)",
                "",
            ],
            ["  errors (status >= 400, sockets, timeouts)", download_errors, "0"],
            [f"reports computed meanwhile ({WORKERS} workers)", f"{computed}", ""],
            # Whether the API is starved of CPU on a shared machine: a status read costs it a few
            # ms of CPU, so its reads per second follow the share of a core it gets.
            [
                "API event loop: on a CPU / runnable, waiting for one",
                f"{api_running:.0%} / {api_waiting:.0%} of the time",
                "",
            ],
        ],
    )
