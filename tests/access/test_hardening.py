"""Browser and request hardening: host names, cross-site requests with auth off, header limits,
security headers and the /docs page's CSP; the start-up rules of the modes; the limiter."""

import base64
import hashlib
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from store_monitor.settings import AuthMode, Settings
from store_monitor.web.failed_auth import FailureLimiter
from store_monitor.web.hardening import MAX_HEADER_BYTES
from store_monitor.web.headers import REFERRER_POLICY
from support.service import TEST_HOST, embedded, serve

CSV = {"Content-Type": "text/csv"}
POLLS = b"store_id,status,timestamp_utc\n1,active,2023-01-22 12:09:39.388884 UTC\n"


def _code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


async def test_unknown_host_names_are_400(tmp_path: Path) -> None:
    async with serve(embedded(tmp_path)) as client:
        for host in ("127.0.0.1:8000", "localhost", f"{TEST_HOST}:80", "[::1]:8000", "LOCALHOST"):
            assert (await client.get("/openapi.json", headers={"Host": host})).status_code == 200
        rebound = await client.get("/reports/x", headers={"Host": "evil.example:8000"})
        assert rebound.status_code == 400
        assert _code(rebound) == "unknown_host"
        assert rebound.headers["x-request-id"]
        # Probes come by address (e.g. a kubelet's, with the pod's IP): any host.
        probe = await client.get("/readyz", headers={"Host": "10.1.2.3:8000"})
        assert probe.status_code == 200


async def test_any_host_with_a_star(tmp_path: Path) -> None:
    async with serve(embedded(tmp_path, allowed_hosts="*")) as client:
        response = await client.get("/openapi.json", headers={"Host": "anything.example"})
        assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost:3000"},  # another origin on the same machine
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
async def test_cross_site_writes_are_refused_with_auth_off(
    tmp_path: Path, headers: dict[str, str]
) -> None:
    async with serve(embedded(tmp_path)) as client:
        upload = await client.post("/ingest/polls", content=POLLS, headers={**CSV, **headers})
        trigger = await client.post("/trigger_report", headers=headers)
        # Reading is not refused: a cross-site page cannot read the answer anyway.
        read = await client.get("/healthz", headers=headers)
    for refused in (upload, trigger):
        assert refused.status_code == 403
        assert _code(refused) == "cross_site_request"
    assert read.status_code == 200


async def test_same_origin_and_non_browser_writes_pass(tmp_path: Path) -> None:
    async with serve(embedded(tmp_path)) as client:
        plain = await client.post("/ingest/polls", content=POLLS, headers=CSV)
        same = await client.post(
            "/trigger_report",
            headers={"Origin": f"http://{TEST_HOST}", "Sec-Fetch-Site": "same-origin"},
        )
        typed = await client.post("/trigger_report", headers={"Sec-Fetch-Site": "none"})
    assert plain.status_code == 200, plain.text
    assert same.status_code == 202, same.text
    assert typed.status_code == 202, typed.text


async def test_headers_too_many_or_too_large_are_431(tmp_path: Path) -> None:
    async with serve(embedded(tmp_path)) as client:
        big = await client.get("/healthz", headers={"X-Big": "x" * MAX_HEADER_BYTES})
        many = await client.get("/healthz", headers=[(f"X-{n}", "1") for n in range(200)])
        fine = await client.get("/healthz", headers={"X-Fine": "x" * 10_000})
    for refused in (big, many):
        assert refused.status_code == 431
        assert _code(refused) == "headers_too_large"
    assert fine.status_code == 200


async def test_security_headers_and_the_docs_policy(tmp_path: Path) -> None:
    async with serve(embedded(tmp_path)) as client:
        docs = await client.get("/docs")
        health = await client.get("/healthz")
    assert health.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in health.headers  # JSON is no page
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert docs.headers["x-content-type-options"] == "nosniff"
    assert docs.headers["x-frame-options"] == "DENY"
    # The pages' one policy (docs/access.md says why not no-referrer).
    assert docs.headers["referrer-policy"] == REFERRER_POLICY == "same-origin"
    policy = docs.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "'unsafe-inline'" not in policy
    [script_src] = [part for part in policy.split("; ") if part.startswith("script-src ")]
    # Exactly the page's inline scripts are admitted, by hash.
    inline = re.findall(r"<script>(.*?)</script>", docs.text, re.DOTALL)
    assert inline
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in script_src.split()
    redoc = await _redoc(tmp_path)
    [redoc_scripts] = [
        part
        for part in redoc.headers["content-security-policy"].split("; ")
        if part.startswith("script-src ")
    ]
    assert "'unsafe-inline'" not in redoc_scripts
    assert "frame-ancestors 'none'" in redoc.headers["content-security-policy"]


async def _redoc(tmp_path: Path) -> httpx.Response:
    async with serve(embedded(tmp_path)) as client:
        return await client.get("/redoc")


def test_auth_mode_follows_the_database() -> None:
    assert Settings(database_url=None).auth_mode is AuthMode.off
    assert Settings(database_url="postgresql+asyncpg://db/x").auth_mode is AuthMode.required
    explicit = Settings(database_url="postgresql+asyncpg://db/x", auth=AuthMode.off)
    assert explicit.auth_mode is AuthMode.off


def test_required_without_a_secret_refuses_to_start(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "STORE_MONITOR_AUTH": "required",
        "STORE_MONITOR_DATA_DIR": str(tmp_path / "postgres"),
    }
    completed = subprocess.run(
        [sys.executable, "-m", "store_monitor.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    [line] = completed.stderr.strip().splitlines()
    assert line.startswith(
        "error: STORE_MONITOR_AUTH is required but STORE_MONITOR_SECRET_KEY is not set"
    )
    short = Settings(auth=AuthMode.required, secret_key="short").auth_problem()
    assert short is not None
    assert "too short" in short


async def test_the_app_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="STORE_MONITOR_SECRET_KEY is not set"):
        async with serve(embedded(tmp_path, auth=AuthMode.required)):
            pass


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_limiter_allows_a_burst_then_a_trickle() -> None:
    clock = _Clock()
    limiter = FailureLimiter(burst=3, per_minute=6, clock=clock)  # one back every 10 s
    for _ in range(3):
        assert limiter.retry_after("a") is None
        limiter.failed("a")
    assert limiter.retry_after("a") == 10
    assert limiter.retry_after("b") is None  # per address
    clock.now += 4
    assert limiter.retry_after("a") == 6
    clock.now += 6
    assert limiter.retry_after("a") is None
    limiter.failed("a")
    assert limiter.retry_after("a") == 10


def test_the_limiter_forgets_the_quietest_addresses_first() -> None:
    limiter = FailureLimiter(burst=1, per_minute=1, clock=_Clock(), max_addresses=2)
    for address in ("a", "b", "c"):
        limiter.failed(address)
    assert limiter.retry_after("a") is None  # forgotten
    assert limiter.retry_after("b") is not None
    assert limiter.retry_after("c") is not None
