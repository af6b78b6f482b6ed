"""A burst of 1,000 concurrent triggers against a served app (keys required, Postgres, Redis):
every one answered, with 202 or 429, none with a 5xx, and a status read right after answered.
The times it takes are the benchmark's to measure (`python -m benchmarks --only burst`, the load
sent by wrk); here the only bound is a timeout generous enough for a busy machine."""

import asyncio
import subprocess
import sys
from collections import Counter
from uuid import uuid4

import httpx

from store_monitor.db.models import KeyScope
from support.processes import environment, free_port, ready
from support.service import REDIS_URL, SECRET_KEY, bearer, create_key, empty_postgres

TRIGGERS = 1_000
RATE = 10
"""Triggers a minute the app allows the key (the default rate)."""


async def test_a_thousand_concurrent_triggers_are_all_answered(postgres_url: str) -> None:
    await empty_postgres(postgres_url)
    key = bearer(await create_key(postgres_url, "burst", scope=KeyScope.reports))
    port = free_port()
    env = environment(
        database_url=postgres_url,
        redis_url=REDIS_URL,
        queue_name=f"store-monitor-test:{uuid4().hex}",
        auth="required",
        secret_key=SECRET_KEY,
        trigger_rate=f"{RATE}/minute",
    )
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "store_monitor.cli", "serve", "--port", str(port)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # No connection is reused: a kept-alive one may be closed by the server as it is reused.
    limits = httpx.Limits(max_connections=TRIGGERS, max_keepalive_connections=0)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=120
        ) as client:
            await ready(client)
            answers = await asyncio.gather(
                *(client.post("/trigger_report", headers=key) for _ in range(TRIGGERS))
            )
            accepted = next(a.json()["report_id"] for a in answers if a.status_code == 202)
            status = await client.get(f"/reports/{accepted}", headers=key)
    finally:
        process.kill()
        await process.wait()

    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) <= {202, 429}, statuses
    assert statuses[202] == RATE, statuses
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]["code"] == "too_many_triggers"
    assert status.status_code == 200, status.text
