"""A burst of triggers: 1,000 concurrent `POST /trigger_report` with one key against the served
service (keys required, Postgres, Redis, the default rate of 10 a minute), then a status read.

Every trigger must be answered within 30 s with 202 or 429 (never a 5xx), and the status read
right after within a second. The burst is sent by Python (httpx, one connection per request) in
this process: on a small machine the client's CPU is part of what the time measures.
"""

import asyncio
import time
from collections import Counter
from typing import Final

import httpx

from benchmarks.service import database, service
from benchmarks.table import print_table

TRIGGERS: Final = 1_000
ANSWERED_TARGET_SECONDS: Final = 30.0
READ_TARGET_SECONDS: Final = 1.0


async def _burst(base_url: str, headers: dict[str, str]) -> tuple[float, Counter[str], float]:
    limits = httpx.Limits(max_connections=TRIGGERS, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=120
    ) as client:
        started = time.perf_counter()
        answers = await asyncio.gather(
            *(client.post("/trigger_report") for _ in range(TRIGGERS)), return_exceptions=True
        )
        answered = time.perf_counter() - started
        statuses = Counter(
            type(answer).__name__ if isinstance(answer, BaseException) else str(answer.status_code)
            for answer in answers
        )
        accepted = next(
            answer.json()["report_id"]
            for answer in answers
            if isinstance(answer, httpx.Response) and answer.status_code == 202
        )
        read_at = time.perf_counter()
        (await client.get(f"/reports/{accepted}")).raise_for_status()
        return answered, statuses, time.perf_counter() - read_at


def run() -> None:
    with database() as url, service(url) as client:
        answered, statuses, read = asyncio.run(_burst(str(client.base_url), dict(client.headers)))
    counts = ", ".join(f"{count} x {status}" for status, count in sorted(statuses.items()))
    only_202_429 = set(statuses) <= {"202", "429"}
    print_table(
        f"Burst: {TRIGGERS:,} concurrent triggers with one key, default rate 10/minute "
        "(load sent from Python: httpx in this process, one connection per request)",
        ["measure", "figure", "target"],
        [
            ["all answered", f"{answered:.1f} s", f"< {ANSWERED_TARGET_SECONDS:.0f} s"],
            [
                "answers by status",
                counts,
                "202 or 429 only" + ("" if only_202_429 else " (MISSED)"),
            ],
            [
                "status read after",
                f"{read * 1000:.0f} ms",
                f"< {READ_TARGET_SECONDS * 1000:.0f} ms",
            ],
        ],
    )
