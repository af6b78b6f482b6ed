"""`store-monitor keys` on Postgres: the secret once, as stdout's last line; lists without
secrets; revocation; one-line errors; and a database dump that holds no secret."""

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from store_monitor.cli import KeyScopeOption, app, parse_expiry
from store_monitor.db.models import ApiKey, KeyScope
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.settings import get_settings
from support.service import SECRET_KEY, empty_postgres

runner = CliRunner()


@pytest.fixture
async def database(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """The CLI's settings pointing at the test run's Postgres database, emptied."""
    await empty_postgres(postgres_url)
    monkeypatch.setenv("STORE_MONITOR_DATABASE_URL", postgres_url)
    monkeypatch.setenv("STORE_MONITOR_SECRET_KEY", SECRET_KEY)
    get_settings.cache_clear()
    yield postgres_url
    get_settings.cache_clear()


def _create(*options: str) -> str:
    result = runner.invoke(app, ["keys", "create", *options])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1  # the secret is all stdout holds
    return lines[-1]


def _keys(url: str) -> list[ApiKey]:
    async def read() -> list[ApiKey]:
        engine = create_engine(url, process_name="store-monitor-tests")
        try:
            async with create_sessionmaker(engine)() as session:
                return list((await session.scalars(sa.select(ApiKey).order_by(ApiKey.name))).all())
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_create_prints_the_secret_once_and_stores_its_hash(database: str) -> None:
    secret = _create("--name", "poller", "--scope", "ingest", "--expires", "30d")
    owner = _create("--name", "brand-x", "--owner", "brand-x")
    assert secret.startswith("sm_")
    assert len(secret) == 46
    poller, brand = sorted(_keys(database), key=lambda key: key.name != "poller")
    assert (poller.name, poller.scope, poller.owner_id) == ("poller", KeyScope.ingest, None)
    assert poller.prefix == secret[:11]
    assert poller.secret_hash != secret.encode()
    assert len(poller.secret_hash) == 32
    assert poller.expires_at is not None
    assert timedelta(days=29) < poller.expires_at - datetime.now(UTC) <= timedelta(days=30)
    assert (brand.scope, brand.owner_id, brand.prefix) == (None, "brand-x", owner[:11])


def test_list_shows_keys_and_states_never_secrets(database: str) -> None:
    first = _create("--name", "alpha", "--scope", "reports")
    second = _create("--name", "beta", "--owner", "brand")
    revoked = runner.invoke(app, ["keys", "revoke", "beta"])
    assert revoked.exit_code == 0, revoked.output
    assert "key 'beta'" in revoked.stderr
    assert "revoked" in revoked.stderr
    again = runner.invoke(app, ["keys", "revoke", "beta"])  # idempotent
    assert again.exit_code == 0, again.output

    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0, listed.output
    header, alpha, beta = listed.stdout.splitlines()
    assert header.split()[:4] == ["name", "prefix", "scope/owner", "state"]
    assert alpha.split()[:4] == ["alpha", first[:11], "reports", "active"]
    assert beta.split()[:4] == ["beta", second[:11], "owner:brand", "revoked"]
    for secret in (first, second):
        assert secret not in listed.output
        assert secret[11:] not in listed.output


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--name", "x"], "error: give either --scope or --owner"),
        (["--name", "x", "--scope", "admin", "--owner", "o"], "error: give either --scope or"),
        (["--name", "bad name", "--scope", "admin"], "error: key name 'bad name': use 1-100"),
        (["--name", "x", "--scope", "admin", "--expires", "soon"], "'soon' is neither a duration"),
        (["--name", "x", "--scope", "admin", "--expires", "2001-01-01"], "is not in the future"),
    ],
)
def test_create_refuses_bad_requests_in_one_line(
    database: str, options: list[str], message: str
) -> None:
    result = runner.invoke(app, ["keys", "create", *options])
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""
    assert _keys(database) == []


def test_a_taken_name_or_unknown_key_is_a_one_line_error(database: str) -> None:
    _create("--name", "taken", "--scope", "admin")
    taken = runner.invoke(app, ["keys", "create", "--name", "taken", "--owner", "o"])
    assert taken.exit_code == 2
    assert taken.stderr.strip() == "error: an API key named 'taken' exists already"
    missing = runner.invoke(app, ["keys", "revoke", "nobody"])
    assert missing.exit_code == 2
    assert missing.stderr.strip() == "error: no API key named 'nobody'"


def test_create_needs_the_server_secret(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORE_MONITOR_SECRET_KEY")
    get_settings.cache_clear()
    result = runner.invoke(app, ["keys", "create", "--name", "x", "--scope", "admin"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: STORE_MONITOR_SECRET_KEY is not set")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_database_dump_holds_no_secret(database: str) -> None:
    secrets = [
        _create("--name", "one", "--scope", "admin"),
        _create("--name", "two", "--owner", "brand"),
    ]
    url = sa.make_url(database)
    dump = subprocess.run(
        [
            "pg_dump",
            "--data-only",
            "-h",
            url.host or "127.0.0.1",
            "-p",
            str(url.port or 5432),
            "-U",
            url.username or "postgres",
            url.database or "",
        ],
        capture_output=True,
        check=True,
        timeout=60,
        env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
    ).stdout
    assert b"COPY public.api_keys" in dump
    for secret in secrets:
        # Neither the secret nor what follows its shown prefix, as text or as hex.
        for part in (secret, secret[11:], secret[11:30]):
            assert part.encode() not in dump
            assert part.encode().hex().encode() not in dump


def test_the_scope_option_names_every_scope() -> None:
    assert [option.value for option in KeyScopeOption] == [scope.value for scope in KeyScope]


def test_expiry_takes_durations_and_instants() -> None:
    now = datetime(2027, 1, 1, tzinfo=UTC)
    assert parse_expiry("90d", now=now) == now + timedelta(days=90)
    assert parse_expiry("12h", now=now) == now + timedelta(hours=12)
    assert parse_expiry("2w", now=now) == now + timedelta(weeks=2)
    assert parse_expiry("2027-02-01T00:00:00Z", now=now) == datetime(2027, 2, 1, tzinfo=UTC)
