"""A report's cost follows its week, not the history kept: trigger -> Complete on 8 days, 8
weeks and 26 weeks of polls of the same stores, and the database's CPU time for each report.

Each history is one generated data set loaded at once (its hours and zones once, as a
deployment has them), then vacuumed and analysed, as autovacuum does in production: the
development machine's shared Postgres runs without autovacuum, and a database never vacuumed
reads every poll's heap page for its visibility and plans without statistics, which measures
that and not the history.
"""

import asyncio
import os
import time
from pathlib import Path
from typing import Final

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from benchmarks import targets
from benchmarks.databases import autocommit, database, ingest_data_set
from benchmarks.processes import service
from benchmarks.report import data_set
from benchmarks.service import trigger_to_complete
from benchmarks.table import print_table

STORES: Final = 3_000
HISTORIES: Final = (("8 days", 8), ("8 weeks", 56), ("26 weeks", 182))
TARGET_RATIO: Final = 1.15
_TICKS: Final = os.sysconf("SC_CLK_TCK")
# The polls a report at the latest poll reads: those of its week.
_WEEK_POLLS: Final = """
SELECT count(*) FROM polls
WHERE timestamp_utc BETWEEN (SELECT max(latest_poll_at) FROM stores) - interval '168 hours'
                        AND (SELECT max(latest_poll_at) FROM stores)
"""


async def _scalar(url: str, query: str) -> object:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.scalar(sa.text(query))
    finally:
        await engine.dispose()


def _backends_cpu(url: str) -> dict[int, float]:
    """CPU seconds so far of each Postgres backend serving the database (this machine's)."""
    name = sa.make_url(url).database
    pids = asyncio.run(
        _scalar(url, f"SELECT array_agg(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    )
    seconds = {}
    for pid in pids if isinstance(pids, list) else []:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / _TICKS
    return seconds


def _report(client: httpx.Client, url: str) -> tuple[float, float]:
    """Seconds from trigger to Complete, and the database's CPU seconds meanwhile (its
    backends': the workers' reads and writes, and the API's)."""
    before = _backends_cpu(url)
    seconds, _ = trigger_to_complete(client)
    # The last writes are committed by now; a backend opened meanwhile counts from zero.
    time.sleep(0.1)
    after = _backends_cpu(url)
    return seconds, sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def run(root: Path, *, runs: int) -> None:
    measured = []
    for label, days in HISTORIES:
        folder = data_set(root, stores=STORES, days=days)
        with database() as url:
            polls, _ = asyncio.run(ingest_data_set(url, folder))
            asyncio.run(autocommit("VACUUM ANALYZE", url=url))
            week = asyncio.run(_scalar(url, _WEEK_POLLS))
            assert isinstance(week, int)
            with service(url) as client:
                timings = [_report(client, url) for _ in range(runs)]
        seconds = min(seconds for seconds, _ in timings)
        cpu = min(cpu for _, cpu in timings)
        measured.append((label, polls, week, seconds, cpu))

    _, _, _, base_seconds, base_cpu = measured[0]
    for label, _, _, seconds, _ in measured[1:]:
        targets.record(
            f"trigger -> Complete, {label} of polls / 8 days ({STORES:,} stores)",
            f"{seconds / base_seconds:.2f}x",
            f"<= {TARGET_RATIO}x",
            met=seconds / base_seconds <= TARGET_RATIO,
        )
    print_table(
        f"History kept: {STORES:,} stores, trigger -> Complete, best of {runs}",
        ["polls kept", "polls stored", "polls read", "report", "ratio", "Postgres CPU", "ratio"],
        [
            [
                label,
                f"{polls:,}",
                f"{week:,}",
                f"{seconds:.2f} s",
                f"{seconds / base_seconds:.2f}x (<= {TARGET_RATIO}x)" if index else "",
                f"{cpu:.2f} s ({cpu / week * 1e6:.2f} s per 1 M polls read)",
                f"{cpu / base_cpu:.2f}x" if index else "",
            ]
            for index, (label, polls, week, seconds, cpu) in enumerate(measured)
        ],
    )
