"""Triggers are rate-limited per API key (per address with authentication off), in Redis or in
the process; a limiter whose Redis is away or silent counts in the process alone; idempotency
keys are per key."""

import asyncio
import logging
import re
from collections import Counter
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from store_monitor.db.models import KeyScope
from store_monitor.settings import Settings
from store_monitor.web.rate_limits import RateLimiter
from support.processes import free_port, redis_server
from support.service import (
    bearer,
    create_key,
    embedded,
    empty_postgres,
    postgres_mode,
    postgres_with_keys,
    serve,
)

_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


@pytest.fixture(params=["memory", "redis"])
def limited(request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str) -> Settings:
    """Three triggers a minute, counted in the process (embedded) or in Redis (Postgres mode)."""
    if request.param == "memory":
        return embedded(tmp_path, trigger_rate="3/minute")
    return postgres_mode(postgres_url, trigger_rate="3/minute")


async def test_triggers_over_the_rate_get_429_with_retry_after(limited: Settings) -> None:
    async with serve(limited) as client:
        accepted = [await client.post("/trigger_report") for _ in range(3)]
        refused = await client.post("/trigger_report")
    assert [response.status_code for response in accepted] == [202, 202, 202]
    assert refused.status_code == 429, refused.text
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 60
    assert refused.json()["error"]["code"] == "too_many_triggers"
    assert refused.json()["error"]["details"] == {"retry_after_seconds": wait}


async def test_the_dashboard_button_counts_against_the_same_rate(limited: Settings) -> None:
    async with serve(limited) as client:
        for _ in range(3):
            assert (await client.post("/trigger_report")).status_code == 202
        token = {"X-CSRF-Token": await _token(client, "/")}
        by_script = await client.post(
            "/ui/reports", headers={**token, "Accept": "application/json"}
        )
        by_form = await client.post("/ui/reports", headers=token)
    assert by_script.status_code == 429
    assert by_script.json()["error"]["code"] == "too_many_triggers"
    assert by_form.status_code == 429
    assert "text/html" in by_form.headers["content-type"]
    assert "Too many reports" in by_form.text
    assert int(by_form.headers["Retry-After"]) >= 1


async def test_each_key_has_its_own_rate_and_idempotency_keys(postgres_url: str) -> None:
    await empty_postgres(postgres_url)
    first_secret = await create_key(postgres_url, "first", scope=KeyScope.reports)
    first = bearer(first_secret)
    second = bearer(await create_key(postgres_url, "second", scope=KeyScope.reports))
    settings = postgres_with_keys(postgres_url, trigger_rate="2/minute")
    same = {"Idempotency-Key": "nightly-2026-12-06"}
    async with serve(settings) as client:
        mine = await client.post("/trigger_report", headers={**first, **same})
        mine_again = await client.post("/trigger_report", headers={**first, **same})
        refused = await client.post("/trigger_report", headers=first)
        theirs = await client.post("/trigger_report", headers={**second, **same})
        # The dashboard signed in with the first key: the same key, the same count.
        form = {"key": first_secret, "next": "", "csrf_token": await _token(client, "/ui/sign-in")}
        assert (await client.post("/ui/sign-in", data=form)).status_code == 303
        button = {"X-CSRF-Token": await _token(client, "/"), "Accept": "application/json"}
        from_dashboard = await client.post("/ui/reports", headers=button)
    assert (mine.status_code, mine_again.status_code, refused.status_code) == (202, 202, 429)
    # The same Idempotency-Key: one report for the same key, its own for another key.
    assert mine_again.json()["report_id"] == mine.json()["report_id"]
    assert mine_again.headers["Idempotent-Replayed"] == "true"
    assert theirs.status_code == 202
    assert theirs.json()["report_id"] != mine.json()["report_id"]
    assert "Idempotent-Replayed" not in theirs.headers
    assert from_dashboard.status_code == 429, from_dashboard.text


async def test_without_keys_idempotency_keys_are_shared(tmp_path: Path) -> None:
    async with serve(embedded(tmp_path)) as client:
        first = await client.post("/trigger_report", headers={"Idempotency-Key": "k"})
        again = await client.post("/trigger_report", headers={"Idempotency-Key": "k"})
    assert again.json()["report_id"] == first.json()["report_id"]


async def test_a_limiter_without_redis_counts_in_the_process(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    settings = postgres_mode(
        postgres_url, redis_url=f"redis://127.0.0.1:{port}/0", trigger_rate="2/minute"
    )
    async with redis_server(port) as redis, serve(settings) as client:
        assert (await client.post("/trigger_report")).status_code == 202
        redis.terminate()
        await redis.wait()
        with caplog.at_level(logging.WARNING, logger="store_monitor"):
            during = await client.post("/trigger_report")
            over = await client.post("/trigger_report")
    # Stored and answered: the sweep queues it once Redis is back (see test_takeover).
    assert (during.status_code, during.json()["status"]) == (202, "Pending")
    assert "trigger rate not checked in Redis" in caplog.text
    # The process's own count still holds the rate while Redis is away.
    assert over.status_code == 429


async def test_a_redis_that_does_not_answer_lets_no_burst_through() -> None:
    # A server that takes connections and never answers: every Redis check times out, as they
    # do when Redis hangs or the process is too busy to read its answers in time.
    taken: list[asyncio.StreamWriter] = []
    silent = await asyncio.start_server(lambda _, writer: taken.append(writer), "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    limiter = RateLimiter(
        "3/minute",
        counts="trigger",
        redis_url=f"redis://127.0.0.1:{port}/0",
        namespace="test-silent",
    )
    try:
        waits = await asyncio.gather(*(limiter.retry_after("key:k") for _ in range(12)))
    finally:
        await limiter.close()
        for writer in taken:
            writer.close()
        silent.close()
        await silent.wait_closed()
    assert Counter(wait is None for wait in waits) == {True: 3, False: 9}


async def test_a_refusal_is_remembered_until_the_window_frees(postgres_url: str) -> None:
    port = free_port()
    settings = postgres_mode(
        postgres_url, redis_url=f"redis://127.0.0.1:{port}/0", trigger_rate="1/minute"
    )
    async with redis_server(port) as redis, serve(settings) as client:
        assert (await client.post("/trigger_report")).status_code == 202
        assert (await client.post("/trigger_report")).status_code == 429
        redis.terminate()
        await redis.wait()
        # Still over the rate: the process knows without Redis (which would let it through).
        again = await client.post("/trigger_report")
    assert again.status_code == 429
    assert 1 <= int(again.headers["Retry-After"]) <= 60


@pytest.mark.parametrize("setting", ["trigger_rate", "webhook_test_rate"])
@pytest.mark.parametrize("rate", ["", "ten a minute", "0/minute", "10/fortnight"])
def test_a_rate_that_cannot_be_read_is_refused_at_start(setting: str, rate: str) -> None:
    with pytest.raises(ValidationError, match=setting):
        Settings.model_validate({setting: rate})


async def test_limits_leave_other_routes_alone(tmp_path: Path) -> None:
    async with serve(embedded(tmp_path, trigger_rate="1/minute")) as client:
        assert (await client.post("/trigger_report")).status_code == 202
        assert (await client.post("/trigger_report")).status_code == 429
        listed = await client.get("/reports")
    assert listed.status_code == 200


async def _token(client: httpx.AsyncClient, path: str) -> str:
    found = _CSRF.search((await client.get(path)).text)
    assert found is not None, f"{path} carries no CSRF token"
    return found[1]
