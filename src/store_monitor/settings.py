"""The service's configuration from `STORE_MONITOR_*` environment variables, read at the edges."""

from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Final

import limits
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ALLOWED_HOSTS: Final = ("127.0.0.1", "localhost", "::1")
_MIN_SECRET_KEY_CHARS: Final = 32


class AuthMode(StrEnum):
    required = "required"
    """Every route but the probes needs an API key (`Authorization: Bearer sm_...`)."""
    off = "off"
    """No keys: anyone who reaches the port may do anything (the embedded mode on 127.0.0.1)."""


class Settings(BaseSettings):
    """Leaving both URLs unset is the embedded mode: a private PostgreSQL server on `data_dir`,
    started and stopped by the process, and an in-process job runner."""

    model_config = SettingsConfigDict(env_prefix="STORE_MONITOR_", frozen=True, extra="ignore")

    database_url: str | None = None
    """SQLAlchemy async URL, e.g. `postgresql+asyncpg://user@host/db`; None → embedded server."""
    data_dir: Path = Path("var/postgres")
    """The embedded server's data directory, created on first start (not used with a URL)."""
    redis_url: str | None = None
    """`redis://host:port/db` for the Arq queue; None → jobs run inside the API process."""
    queue_name: str = "store-monitor:queue"

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    database_pool_size: int = Field(default=15, ge=1)
    """Postgres connections the API process keeps open (workers keep the default 5)."""
    database_max_overflow: int = Field(default=0, ge=0)
    """Connections opened beyond the pool at busy times, closed when returned. None by default:
    a connection opened for one request and closed after it cost the API more CPU than the
    request itself (a new backend, its statements prepared again), so the pool keeps them all."""
    database_pool_timeout_seconds: float = Field(default=30.0, gt=0)
    """How long a request waits for a connection before it answers 503."""
    max_upload_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    clock_skew_seconds: float = Field(default=86_400.0, ge=0)
    """How far past this server's clock a poll's timestamp, or a report's as_of, may be."""
    job_timeout_seconds: float = Field(default=600.0, gt=0)
    job_max_tries: int = Field(default=3, ge=1)
    """Attempts a report gets when its worker dies or is stopped under it; errors fail at once."""
    max_concurrent_jobs: int = Field(default=4, ge=1)
    """Jobs (reports, or shards of large ones) a worker runs at once: its memory is about this
    many shards' (see `shard_stores`)."""
    shard_stores: int = Field(default=50_000, ge=1)
    """A report of more stores is computed in shards of about this many stores, each a job of
    its own that any worker may run; at hourly polls a shard holds about 10 KB per store while
    it computes. The runner's default too (`store_monitor.work.lease.DEFAULT_SHARD_STORES`)."""
    lease_seconds: float = Field(default=15.0, gt=0)
    """How long a report being computed stays its runner's without a heartbeat (one every third
    of it): a runner silent for longer is taken to be dead and the report is taken over."""
    sweep_interval_seconds: float = Field(default=5.0, gt=0)
    """How often every runner looks for reports to take over, requeue, fail or delete."""
    report_retention_days: float = Field(default=30.0, gt=0)
    """Reports created longer ago than this are deleted, rows and all."""
    event_retention_days: float = Field(default=30.0, gt=0)
    """Webhook deliveries finished longer ago than this are deleted with their attempts, then
    the events recorded as long ago that no delivery waits for."""
    poll_retention_days: int | None = Field(default=None, ge=7)
    """Polls are kept this many days, then dropped a whole week at a time (a week is kept until
    all of it is older); None keeps every poll. At least a report's week."""
    log_level: str = "INFO"
    log_json: bool | None = None
    """Log JSON lines (True) or plain text (False); None: JSON unless stderr is a terminal."""
    sample_data: bool = True
    """Embedded mode only: load a small generated data set on a first start with no polls."""

    auth: AuthMode | None = None
    """None: `required` when an external database is configured, else `off`."""
    secret_key: SecretStr | None = None
    """The server secret API keys are hashed with (HMAC-SHA256); needed by `required`."""
    auth_failures_per_minute: int = Field(default=10, ge=1)
    """Failed authentications a client address may have in a row, and earns back a minute."""
    trigger_rate: str = "10/minute"
    """Reports each API key (each client address, with authentication off) may trigger, in the
    `limits` notation: `10/minute`, `100/hour`, several with `;` (`5/second;100/hour`)."""
    schedule_min_interval_minutes: int = Field(default=60, ge=1)
    """The least time a report schedule's fire times may be apart: stores are polled about
    hourly, so reports more often tell little new."""
    schedule_max_per_key: int = Field(default=25, ge=1)
    """Report schedules one API key may have (all of them together, with authentication off)."""
    allowed_hosts: str = ",".join(DEFAULT_ALLOWED_HOSTS)
    """Comma-separated `Host` names the API answers (`host` is added; IPv6 without brackets);
    `*` answers any."""
    trusted_proxies: str = ""
    """Comma-separated addresses or networks (`10.0.0.0/8`) of the proxies in front of the API:
    only on their connections do `X-Forwarded-For` and `X-Forwarded-Proto` say who the client
    is. Empty: never, the connection's own address counts."""

    webhook_private_targets: bool = False
    """Allow webhooks to loopback and private addresses, and plain `http` (tests, receivers on
    premises); by default only public `https` targets, checked again after DNS resolution."""
    webhook_retry_base_seconds: float = Field(default=5.0, gt=0)
    """The pause after a delivery's first failed attempt; each next one is longer (see
    `webhooks.backoff`)."""
    webhook_max_attempts: int = Field(default=12, ge=1)
    """Attempts per delivery before it is marked failed: about a day with the default base."""
    webhook_connect_timeout_seconds: float = Field(default=3.0, gt=0)
    """How long a delivery attempt may take to connect (TLS included)."""
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    """The most one delivery attempt may take, resolution and connection included."""
    webhook_max_subscriptions: int = Field(default=25, ge=1)
    """Webhook subscriptions one API key may have."""
    webhook_test_rate: str = "10/minute"
    """Test events each API key (each client address, with authentication off) may send, in the
    `limits` notation, as `trigger_rate`: each is a request to the webhook's URL, which a key
    may point at any public address."""
    public_url: str = ""
    """The service's public base URL (`https://monitor.example.com`), for links in webhook
    events (a report's CSV); empty: the links are paths relative to the API's root."""

    @property
    def auth_mode(self) -> AuthMode:
        if self.auth is not None:
            return self.auth
        return AuthMode.off if self.embedded_database else AuthMode.required

    @property
    def schedule_min_interval(self) -> timedelta:
        return timedelta(minutes=self.schedule_min_interval_minutes)

    @property
    def host_names(self) -> frozenset[str]:
        """The allowed `Host` names, lower case; empty means any."""
        names = {name.strip().lower() for name in self.allowed_hosts.split(",") if name.strip()}
        if "*" in names:
            return frozenset()
        return frozenset({*names, self.host.lower()})

    @field_validator("trigger_rate", "webhook_test_rate")
    @classmethod
    def _rate_is_readable(cls, value: str) -> str:
        try:
            rates = limits.parse_many(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is no rate like '10/minute' or '5/second;100/hour'"
            ) from None
        if any(rate.amount < 1 for rate in rates):
            raise ValueError(f"{value!r}: a rate allows at least 1")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: str) -> str:
        _networks(value)
        return value

    @property
    def trusted_proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return _networks(self.trusted_proxies)

    def auth_problem(self) -> str | None:
        """Why the service must not start with these access settings, or None."""
        if self.auth_mode is AuthMode.off:
            return None
        if self.secret_key is None or not self.secret_key.get_secret_value().strip():
            return (
                "STORE_MONITOR_AUTH is required but STORE_MONITOR_SECRET_KEY is not set "
                "(generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if len(self.secret_key.get_secret_value()) < _MIN_SECRET_KEY_CHARS:
            return (
                "STORE_MONITOR_SECRET_KEY is too short: "
                f"use at least {_MIN_SECRET_KEY_CHARS} characters"
            )
        return None

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def in_process_jobs(self) -> bool:
        return self.redis_url is None


def _networks(text: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """The comma-separated addresses and networks in `text`; a ValueError names a wrong one."""
    networks = []
    for entry in (entry.strip() for entry in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"{entry!r} is not an IP address or network such as 10.0.0.0/8"
            ) from None
    return tuple(networks)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
