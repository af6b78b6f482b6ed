"""A burst of triggers: 1,000 concurrent `POST /trigger_report` with one key against the served
service (keys required, Postgres, Redis, the default rate of 10 a minute), then a status read.

Every trigger must be answered within 30 s with 202 or 429 (never a 5xx), and the status read
right after within a second. The burst comes from wrk (compiled; `benchmarks.wrk`): 1,000
connections, each sending its one trigger at once and closed once answered; "all answered" runs
from the first trigger sent to the last answer.
"""

import time
from typing import Final

from benchmarks import wrk
from benchmarks.databases import database
from benchmarks.processes import service
from benchmarks.table import print_table

TRIGGERS: Final = 1_000
THREADS: Final = 2
ANSWERED_TARGET_SECONDS: Final = 30
READ_TARGET_SECONDS: Final = 1.0
BOUND_SECONDS: Final = 2 * ANSWERED_TARGET_SECONDS
"""How long wrk waits for the answers at most."""


def run() -> None:
    wrk.ensure_installed()
    with database() as url, service(url) as client:
        burst = wrk.run(
            wrk.Load(
                "once",
                str(client.base_url),
                seconds=BOUND_SECONDS,
                connections=TRIGGERS,
                threads=THREADS,
                # Each connection closed once answered: left idle, the server would close it
                # after its keep-alive time, which wrk counts as a read error.
                headers={"Authorization": client.headers["Authorization"], "Connection": "close"},
                arguments=[str(TRIGGERS // THREADS), "POST", "/trigger_report"],
                timeout_seconds=BOUND_SECONDS,
            ),
            finishing_threads=THREADS,
        )
        read_at = time.perf_counter()
        client.get(f"/reports/{burst['accepted']}").raise_for_status()
        read_seconds = time.perf_counter() - read_at
    statuses = burst["statuses"]
    answered = sum(statuses.values())
    counts = ", ".join(f"{count} x {status}" for status, count in sorted(statuses.items()))
    socket_errors = {kind: n for kind, n in wrk.errors(burst).items() if kind != "status"}
    print_table(
        f"Burst: {TRIGGERS:,} concurrent triggers with one key, default rate 10/minute "
        f"(load by wrk, {TRIGGERS:,} connections)",
        ["measure", "figure", "target"],
        [
            [
                "all answered" if answered == TRIGGERS else f"{answered:,} answered",
                f"{burst['all_answered_seconds']:.1f} s",
                f"< {ANSWERED_TARGET_SECONDS} s",
            ],
            [
                "answers by status",
                counts,
                "202 or 429 only" + ("" if set(statuses) <= {"202", "429"} else " (MISSED)"),
            ],
            ["socket errors, timeouts", wrk.described(socket_errors), "0"],
            [
                "status read after",
                f"{read_seconds * 1000:.0f} ms",
                f"< {READ_TARGET_SECONDS * 1000:.0f} ms",
            ],
        ],
    )
