"""The service run in-process for tests: the app with its lifespan, a real Arq worker, and the
report the CLI would compute, to compare with."""

import asyncio
import atexit
import contextlib
import functools
import gzip
import os
import shutil
import signal
import subprocess
import tempfile
import warnings
import weakref
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import polars as pl
from arq.worker import Worker
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor import access, reports
from store_monitor.db.embedded import initialise
from store_monitor.db.models import KeyScope
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.engine import compute_report
from store_monitor.formats import report_csv_bytes
from store_monitor.settings import DEFAULT_ALLOWED_HOSTS, AuthMode, Settings
from store_monitor.sources import read_business_hours, read_polls, read_timezones
from store_monitor.synthetic import GeneratedFiles
from store_monitor.web.app import create_app
from store_monitor.web.deps import STATE_KEY, AppState
from store_monitor.work.arq import OutlastingWorker
from store_monitor.worker import worker_settings
from support.database import empty_tables

REDIS_URL = "redis://127.0.0.1:6379/0"
TEST_HOST = "store-monitor"
TESTS_TRIGGER_RATE = "10000/minute"
"""The host name of the test clients' base URL, which the apps are configured to answer."""
_OPEN = {
    "auth": AuthMode.off,
    "allowed_hosts": ",".join([*DEFAULT_ALLOWED_HOSTS, TEST_HOST]),
    # Tests trigger many reports from one address; the rate's own tests set theirs.
    "trigger_rate": TESTS_TRIGGER_RATE,
}
SECRET_KEY = "the-tests-server-secret-key-0123456789"
"""The server secret of the tests' apps with authentication required."""


@contextlib.asynccontextmanager
async def serve(
    settings: Settings, *, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app, its lifespan run around it as an ASGI server would.

    An error the app does not handle is raised in the test, unless `raise_app_exceptions` is
    False: then the client gets the app's 500 response, as from a server.
    """
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Any, receive: Any, send: Any) -> None:
            # What a server does with the lifespan's state: a copy into every request's scope.
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{TEST_HOST}") as client:
            _APP_STATES[client] = (state or {})[STATE_KEY]
            yield client


_APP_STATES: "weakref.WeakKeyDictionary[httpx.AsyncClient, AppState]" = weakref.WeakKeyDictionary()


def app_state(client: httpx.AsyncClient) -> AppState:
    """The state of the app a client of `serve` talks to: its engine and sessions, for a test
    that reaches into the database the app runs on (in the embedded mode, only it knows where)."""
    return _APP_STATES[client]


@contextlib.asynccontextmanager
async def arq_worker(settings: Settings, **overrides: Any) -> AsyncIterator[OutlastingWorker]:
    """A worker as `store-monitor worker` runs it, polling the settings' queue in the background
    until the block ends."""
    worker = OutlastingWorker(
        **{**worker_settings(settings), **overrides}, handle_signals=False, poll_delay=0.02
    )
    task = asyncio.create_task(worker.async_run())
    try:
        yield worker
    finally:
        # Let running jobs end first: a cancelled job would go back to the queue.
        await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
        await close_worker(worker)
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_burst(settings: Settings, **overrides: Any) -> OutlastingWorker:
    """A worker as `store-monitor worker` runs it, until its queue is empty (start-up
    included), then closed."""
    worker = OutlastingWorker(
        **{**worker_settings(settings), **overrides},
        burst=True,
        handle_signals=False,
        poll_delay=0.02,
    )
    try:
        await worker.async_run()
    finally:
        await close_worker(worker)
    return worker


async def stop_when(worker: OutlastingWorker, reached: Awaitable[object]) -> None:
    """Run `worker` in the background until `reached` is done (within 30 s), then stop it as
    `close_worker` does and wait for its run to end."""
    running = asyncio.create_task(worker.async_run())
    try:
        async with asyncio.timeout(30):
            await reached
    finally:
        await close_worker(worker)
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def close_worker(worker: Worker) -> None:
    """Stop `worker` in the order `Worker.run` does: cancel its jobs and its poll loop, wait for
    them to end, then shut it down (`on_shutdown` disposes its engine) and close its pool.

    `Worker.close` alone cancels the poll loop without waiting for it: a start-up round or a
    poll still under way then holds a database connection or a Redis pipeline while the engine
    and the pool are closed, and the garbage collector finds it unclosed in a later test."""
    worker.handle_sig(signal.SIGUSR1)
    stopping = [*worker.tasks.values(), *filter(None, [worker.main_task])]
    await asyncio.gather(*stopping, return_exceptions=True)
    with warnings.catch_warnings():
        # arq 0.28 closes its pool with redis' deprecated close(), not aclose().
        warnings.filterwarnings("ignore", "Call to deprecated close", DeprecationWarning)
        await worker.close()


def expected_csv(files: GeneratedFiles, *, as_of: datetime | None = None) -> bytes:
    """The report the CLI computes from the same files."""
    report = compute_report(*_frames(files), as_of=as_of)
    return report_csv_bytes(report.rows)


@functools.cache
def _frames(files: GeneratedFiles) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    return (
        read_polls(files.store_status),
        read_business_hours(files.menu_hours),
        read_timezones(files.timezones),
    )


async def upload_all(client: httpx.AsyncClient, files: GeneratedFiles) -> dict[str, dict[str, Any]]:
    """Upload the three files; each upload's response body by kind."""
    bodies = {}
    for path, route in (
        (files.store_status, "/ingest/polls"),
        (files.menu_hours, "/ingest/business-hours"),
        (files.timezones, "/ingest/timezones"),
    ):
        response = await client.post(
            route, content=path.read_bytes(), headers={"Content-Type": "text/csv"}
        )
        assert response.status_code == 200, response.text
        bodies[response.json()["source"]] = response.json()
    return bodies


async def wait_until_final(
    client: httpx.AsyncClient, report_id: str, *, within: float = 30.0
) -> dict[str, Any]:
    """The report's metadata once it is Complete or Failed (failing after `within` seconds)."""
    async with asyncio.timeout(within):
        while True:
            response = await client.get(f"/reports/{report_id}")
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if body["status"] in ("Complete", "Failed"):
                return body
            await asyncio.sleep(0.05)


def embedded_data_dir(tmp_path: Path, *, initialised: bool = True) -> Path:
    """A data directory for the embedded server, one per `tmp_path`: a copy of one made by
    initdb once per test process (initdb's fsyncs take seconds), or nothing if not
    `initialised`.

    As root the server runs as an unprivileged user, who cannot enter pytest's temporary
    folders (pytest keeps their parent private, resetting its mode at every session start):
    then the directory lives in a folder of this test process that the user may cross.
    """
    root = tmp_path if os.geteuid() != 0 else _crossable_root() / tmp_path.name
    root.mkdir(exist_ok=True)
    data_dir = root / "postgres"
    if initialised:
        # cp -a keeps the files' owner, the server's user, as Postgres requires.
        subprocess.run(["cp", "-a", str(_initialised_template()), str(data_dir)], check=True)
    return data_dir


@functools.cache
def _crossable_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="store-monitor-tests-"))
    root.chmod(0o711)
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


@functools.cache
def _initialised_template() -> Path:
    base = _crossable_root() if os.geteuid() == 0 else Path(tempfile.mkdtemp())
    template = base / "initdb-template"
    initialise(template)
    if os.geteuid() != 0:
        atexit.register(shutil.rmtree, base, ignore_errors=True)
    return template


def embedded(tmp_path: Path, **overrides: Any) -> Settings:
    """The embedded mode, authentication off (as by default)."""
    return Settings(
        database_url=None,
        redis_url=None,
        data_dir=embedded_data_dir(tmp_path),
        **{"sample_data": False, **_OPEN, **overrides},
    )


async def empty_postgres(url: str) -> None:
    """Delete all data from the test run's Postgres database, for a test of its own."""
    engine = create_engine(url, process_name="store-monitor-tests")
    try:
        async with engine.begin() as connection:
            await empty_tables(connection)
    finally:
        await engine.dispose()


def postgres_mode(url: str, **overrides: Any) -> Settings:
    """The Postgres and Arq mode, authentication off unless `overrides` say otherwise (the
    access tests give it keys)."""
    # A queue of its own: jobs of other tests, or of a dev worker on the same Redis, stay apart.
    return Settings(
        database_url=url,
        queue_name=f"store-monitor-test:{uuid4().hex}",
        **{"redis_url": REDIS_URL, "max_concurrent_jobs": 10, **_OPEN, **overrides},
    )


def postgres_with_keys(url: str, **overrides: Any) -> Settings:
    """The Postgres and Arq mode with authentication required, keys hashed with SECRET_KEY."""
    return postgres_mode(url, **{"auth": AuthMode.required, "secret_key": SECRET_KEY, **overrides})


async def create_key(
    url: str,
    name: str,
    *,
    scope: KeyScope | None = None,
    owner_id: str | None = None,
    expires_at: datetime | None = None,
) -> str:
    """A new key in the database at `url`, hashed with SECRET_KEY; its secret."""
    engine = create_engine(url, process_name="store-monitor-tests")
    try:
        async with create_sessionmaker(engine).begin() as session:
            created = await access.create_key(
                session,
                server_key=SECRET_KEY.encode(),
                name=name,
                scope=scope,
                owner_id=owner_id,
                expires_at=expires_at,
                now=datetime.now(UTC),
            )
    finally:
        await engine.dispose()
    return created.secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def stored_csv(sessions: async_sessionmaker[AsyncSession], report_id: UUID) -> bytes:
    """The complete report's stored CSV file, as downloads send it."""
    async with sessions() as session:
        stored = await reports.report_file(session, report_id, content=True)
    assert stored is not None
    assert stored.gzip is not None
    return gzip.decompress(stored.gzip)
