"""The Postgres + Arq service end to end: ingest rate, trigger-to-Complete, CSV download.

Runs the real processes (`store-monitor serve` and `store-monitor worker`) against a Postgres
database made for the run and dropped after it, and compares with the offline report on the
same files, in the same run.
"""

import asyncio
import os
import re
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks import phases, targets
from benchmarks.databases import autocommit, database, ingest_data_set
from benchmarks.processes import embedded_data_dir, embedded_service, service
from benchmarks.report import best_of, best_processes, data_set, full_report, report_command
from benchmarks.table import print_table


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
        polls, ingest_seconds = asyncio.run(ingest_data_set(url, eight_days))
        with service(url) as client:
            sides = []
            for _ in range(runs):
                triggered = datetime.now(UTC)
                seconds, report_id = trigger_to_complete(client)
                side = phases.service_side(client, report_id, triggered, seconds)
                sides.append(replace(side, downloaded=seconds + download(client, report_id)[1]))
            complete = min(side.total for side in sides)
            first_byte, last_byte, size = min(download(client, report_id) for _ in range(runs))
            pages = store_pages(client, report_id)
        # Vacuumed, as autovacuum leaves a database in production (history.py says why): the
        # read's index-only scans then skip the heap, as its target (per 1 M polls) assumes.
        asyncio.run(autocommit("VACUUM ANALYZE", url=url))
        report_phases = phases.measure(url, runs=runs)
        load = os.getloadavg()

    with embedded_data_dir(root, eight_days) as data_dir, embedded_service(data_dir) as client:
        embedded, _ = min(trigger_to_complete(client) for _ in range(runs))

    for label, rate in (
        ("new weeks", polls / ingest_seconds),
        ("weeks made ahead", polls / seconds_ahead),
    ):
        targets.record(
            f"polls ingest rate, {label} (COPY)",
            f"{rate:,.0f} rows/s",
            ">= 500,000 rows/s",
            met=rate >= 500_000,
        )
    print_table(
        f"Service (Postgres + Arq, and embedded), 14,000 stores, best of {runs}",
        ["measure", "value", "target"],
        [
            [
                "polls ingest rate, new weeks (COPY)",
                f"{polls / ingest_seconds:,.0f} rows/s",
                ">= 500,000 rows/s",
            ],
            [
                "polls ingest rate, weeks made ahead",
                f"{polls / seconds_ahead:,.0f} rows/s",
                ">= 500,000 rows/s",
            ],
            ["offline report (same files, same run)", f"{offline:.2f} s", ""],
            ["trigger -> Complete, 8 days of polls", f"{complete:.2f} s", ""],
            # Its target is the phases' table's: trigger -> CSV downloaded / the offline process.
            ["  ratio to the offline report", f"{complete / offline:.2f}x", ""],
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
        f"A service report's phases (database vacuumed after the service's reports), "
        f"14,000 stores x 8 days, best of {runs}; load average {load[0]:.1f}",
        report_phases,
        min(sides, key=lambda side: side.downloaded),
        offline_process.seconds,
    )
