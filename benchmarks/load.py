"""Status polls under load: the API and 2 workers on 14,000 stores, while 20 clients download
CSVs back to back and the workers keep computing reports.

Polls are sent at a fixed rate (an open loop): each starts at its scheduled instant and its
latency counts from there, so a server that stalls cannot hide behind clients that wait.
Everything is bounded: the number of polls (rate x seconds), the connections of each client,
and every request's time (a request over `REQUEST_TIMEOUT` is an error).
"""

import asyncio
import statistics
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Final

import httpx

from benchmarks.report import data_set
from benchmarks.service import database, ingest_data_set, service
from benchmarks.table import print_table

DEFAULT_POLLS_PER_SECOND: Final = 100
DOWNLOADERS: Final = 20
WORKERS: Final = 2
REQUEST_TIMEOUT: Final = 10.0
P99_TARGET_SECONDS: Final = 0.25


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    """How late each poll left this process: when high, the load generator (starved of CPU),
    not the service, is what the latencies measure."""
    poll_errors: Counter[str] = field(default_factory=Counter)
    downloads: int = 0
    downloaded_bytes: int = 0
    download_errors: Counter[str] = field(default_factory=Counter)
    computed: int = 0


async def _complete(client: httpx.AsyncClient) -> str:
    """A new report's id once it is Complete."""
    report_id: str = (await client.post("/trigger_report")).raise_for_status().json()["report_id"]
    while True:
        status = (await client.get(f"/reports/{report_id}")).raise_for_status().json()["status"]
        if status == "Complete":
            return report_id
        if status == "Failed":
            raise RuntimeError(f"report {report_id} failed")
        await asyncio.sleep(0.2)


async def _poll(client: httpx.AsyncClient, report_id: str, due: float, tally: Tally) -> None:
    tally.lags.append(time.perf_counter() - due)
    try:
        response = await client.get(f"/reports/{report_id}")
    except httpx.HTTPError as error:
        tally.poll_errors[type(error).__name__] += 1
        return
    if response.status_code != 200:
        tally.poll_errors[f"HTTP {response.status_code}"] += 1
        return
    tally.latencies.append(time.perf_counter() - due)


async def _poll_at_rate(
    client: httpx.AsyncClient, report_ids: list[str], *, rate: float, seconds: float, tally: Tally
) -> None:
    started = time.perf_counter()
    polls: set[asyncio.Task[None]] = set()
    for number in range(int(rate * seconds)):
        due = started + number / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        report_id = report_ids[number % len(report_ids)]
        polls.add(asyncio.create_task(_poll(client, report_id, due, tally)))
    await asyncio.gather(*polls)


async def _download_until(
    client: httpx.AsyncClient,
    report_ids: list[str],
    stop: asyncio.Event,
    *,
    gzipped: bool,
    tally: Tally,
) -> None:
    headers = {"Accept-Encoding": "gzip" if gzipped else "identity"}
    number = 0
    while not stop.is_set():
        report_id = report_ids[number % len(report_ids)]
        number += 1
        try:
            async with client.stream(
                "GET", f"/reports/{report_id}/csv", headers=headers
            ) as response:
                if response.status_code != 200:
                    tally.download_errors[f"HTTP {response.status_code}"] += 1
                    continue
                size = 0
                async for chunk in response.aiter_raw():
                    size += len(chunk)
        except httpx.HTTPError as error:
            tally.download_errors[type(error).__name__] += 1
            continue
        if size != int(response.headers["content-length"]):
            tally.download_errors["cut short"] += 1
        tally.downloads += 1
        tally.downloaded_bytes += size


async def _compute_until(
    client: httpx.AsyncClient, report_ids: list[str], stop: asyncio.Event, tally: Tally
) -> None:
    """One report always computing; each polled too, from its trigger on."""
    while not stop.is_set():
        report_ids.append(await _complete(client))
        tally.computed += 1


def _limits(connections: int) -> httpx.Limits:
    # Idle connections are dropped well before uvicorn's 5 s keep-alive ends: a request sent on
    # one the server is closing meanwhile would fail (a ReadError) for no fault of either side.
    return httpx.Limits(max_connections=connections, keepalive_expiry=2.0)


async def _download_for(
    base: str, headers: dict[str, str], report_ids: list[str], seconds: float
) -> Tally:
    tally = Tally()
    stop = asyncio.Event()
    async with httpx.AsyncClient(
        base_url=base,
        headers=headers,
        timeout=httpx.Timeout(REQUEST_TIMEOUT),
        limits=_limits(DOWNLOADERS),
    ) as client:
        clients = [
            asyncio.create_task(
                _download_until(client, report_ids, stop, gzipped=number % 2 == 1, tally=tally)
            )
            for number in range(DOWNLOADERS)
        ]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*clients)
    return tally


def _downloading(
    base: str, headers: dict[str, str], report_ids: list[str], seconds: float
) -> Tally:
    return asyncio.run(_download_for(base, headers, report_ids, seconds))


async def _load(
    base: str, headers: dict[str, str], *, rate: float, seconds: float
) -> tuple[Tally, Tally, float]:
    """The polls' tally, the downloads', and how long the polls took."""
    timeout = httpx.Timeout(REQUEST_TIMEOUT)
    options = {"base_url": base, "headers": headers, "timeout": timeout}
    async with (
        httpx.AsyncClient(**options, limits=_limits(4)) as setup,
        httpx.AsyncClient(**options, limits=_limits(200)) as pollers,
    ):
        finished = [await _complete(setup), await _complete(setup)]
        polled = list(finished)
        tally = Tally()
        stop = asyncio.Event()
        computing = asyncio.create_task(_compute_until(setup, polled, stop, tally))
        # The downloads in a process of their own: reading 20 bodies through httpx takes more
        # CPU than the polls, and on one event loop would delay the polls' sending.
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            downloads = asyncio.get_running_loop().run_in_executor(
                pool, _downloading, base, headers, finished, seconds
            )
            started = time.perf_counter()
            try:
                await _poll_at_rate(pollers, polled, rate=rate, seconds=seconds, tally=tally)
            finally:
                elapsed = time.perf_counter() - started
                stop.set()
                downloaded = await downloads
                await computing
    return tally, downloaded, elapsed


def run(root: Path, *, seconds: float, rate: float = DEFAULT_POLLS_PER_SECOND) -> None:
    eight_days = data_set(root, stores=14_000, days=8)
    with database() as url:
        asyncio.run(ingest_data_set(url, eight_days))
        with service(url, workers=WORKERS) as client:
            # The service's key, for clients of their own (the downloads' in another process).
            headers = {"Authorization": client.headers["Authorization"]}
            tally, downloaded, elapsed = asyncio.run(
                _load(str(client.base_url), headers, rate=rate, seconds=seconds)
            )

    polls = len(tally.latencies) + sum(tally.poll_errors.values())
    if len(tally.latencies) >= 2:
        cuts = statistics.quantiles(tally.latencies, n=100, method="inclusive")
        p50, p99, worst = cuts[49], cuts[98], max(tally.latencies)
    else:
        p50 = p99 = worst = float("nan")
    lag_p99 = statistics.quantiles(tally.lags, n=100, method="inclusive")[98]

    def errors(counts: Counter[str]) -> str:
        return ", ".join(f"{count} {kind}" for kind, count in counts.most_common()) or "0"

    print_table(
        f"Status polls while downloading: API + {WORKERS} workers, 14,000 stores, {seconds:g} s",
        ["measure", "value", "target"],
        [
            ["status polls answered", f"{polls:,} ({polls / elapsed:.0f}/s)", f"{rate:g}/s"],
            ["  p50", f"{p50 * 1000:.0f} ms", ""],
            ["  p99", f"{p99 * 1000:.0f} ms", f"< {P99_TARGET_SECONDS * 1000:.0f} ms"],
            ["  max", f"{worst * 1000:.0f} ms", ""],
            ["  errors", errors(tally.poll_errors), "0"],
            ["  p99 lateness of the sender itself", f"{lag_p99 * 1000:.0f} ms", "(small)"],
            [
                f"CSV downloads, {DOWNLOADERS} clients (half gzip)",
                f"{downloaded.downloads:,} ({downloaded.downloaded_bytes / 1e6 / seconds:.0f} MB/s)"
                if downloaded.downloads
                else "0",
                "",
            ],
            ["  errors", errors(downloaded.download_errors), "0"],
            ["reports computed meanwhile", f"{tally.computed}", ""],
        ],
    )
