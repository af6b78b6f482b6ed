"""The service's configuration from `STORE_MONITOR_*` environment variables, read at the edges."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Leaving both URLs unset is the embedded mode: a SQLite file and an in-process job runner."""

    model_config = SettingsConfigDict(env_prefix="STORE_MONITOR_", frozen=True, extra="ignore")

    database_url: str | None = None
    """SQLAlchemy async URL, e.g. `postgresql+asyncpg://user@host/db`; None → `sqlite_path`."""
    sqlite_path: Path = Path("var/store-monitor.db")
    redis_url: str | None = None
    """`redis://host:port/db` for the Arq queue; None → jobs run inside the API process."""
    queue_name: str = "store-monitor:queue"

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_upload_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    job_timeout_seconds: float = Field(default=600.0, gt=0)
    job_max_tries: int = Field(default=3, ge=1)
    """Attempts a report gets when its worker dies or is stopped under it; errors fail at once."""
    max_concurrent_jobs: int = Field(default=4, ge=1)
    poll_retention_days: int | None = Field(default=None, ge=7)
    """Polls are kept this many days, then dropped a whole week at a time (a week is kept until
    all of it is older); None keeps every poll. At least a report's week."""
    log_level: str = "INFO"
    log_json: bool | None = None
    """Log JSON lines (True) or plain text (False); None: JSON unless stderr is a terminal."""
    sample_data: bool = True
    """Embedded mode only: load a small generated data set on a first start with no polls."""

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def in_process_jobs(self) -> bool:
        return self.redis_url is None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.sqlite_path}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
