"""The service's real processes for a benchmark: `store-monitor serve` and its workers on a
queue of their own (or the embedded mode), a client of them, and their peak memory."""

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import httpx

from store_monitor import access
from store_monitor.db.models import KeyScope
from store_monitor.db.session import create_engine, create_sessionmaker

REDIS_URL = os.environ.get("STORE_MONITOR_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _new_key(url: str, server_key: str) -> str:
    engine = create_engine(url, process_name="store-monitor-bench")
    try:
        async with create_sessionmaker(engine).begin() as session:
            created = await access.create_key(
                session,
                server_key=server_key.encode(),
                name=f"bench-{uuid4().hex[:8]}",
                scope=KeyScope.admin,
                now=datetime.now(UTC),
            )
    finally:
        await engine.dispose()
    return created.secret


_COMMAND = (sys.executable, "-m", "store_monitor.cli")


def _environment(**settings: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("STORE_MONITOR_")}
    environment.update({f"STORE_MONITOR_{k.upper()}": v for k, v in settings.items()})
    return {**environment, "STORE_MONITOR_LOG_LEVEL": "WARNING"}


def vm_hwm_bytes(status: str) -> int | None:
    """The peak resident memory (`VmHWM`) in a `/proc/<pid>/status` text, in bytes; None when
    the text has none (a process that has exited: a zombie's status has no memory lines)."""
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name == "VmHWM":
            number, unit = value.split()
            if unit != "kB":
                raise ValueError(f"VmHWM in {unit!r}, not kB")
            return int(number) * 1024
    return None


def peak_resident_bytes(pid: int) -> int | None:
    """A running process's peak resident memory so far; None once it has exited."""
    try:
        return vm_hwm_bytes(Path(f"/proc/{pid}/status").read_text())
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class Scheduling:
    """A thread's time so far, in seconds (`/proc/<pid>/schedstat`): on a CPU, and runnable but
    waiting for one (the CPU it wanted and did not get, on a busy machine)."""

    running: float
    waiting: float

    @classmethod
    def of(cls, pid: int) -> "Scheduling":
        """The main thread's of process `pid` (an asyncio server's event loop)."""
        running, waiting, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
        return cls(int(running) / 1e9, int(waiting) / 1e9)


@dataclass
class PeakMemory:
    """Peak resident memory (bytes) of a service's processes, read by `read`: by the service
    just before it stops them, and by its user whenever it likes (e.g. idle, after start)."""

    pids: list[int] = field(default_factory=list)
    """The API's, then each worker's, while they run."""
    api: int | None = None
    workers: list[int | None] = field(default_factory=list)

    def read(self) -> None:
        self.api, *self.workers = (peak_resident_bytes(pid) for pid in self.pids)

    @property
    def worst_worker(self) -> int | None:
        return max((peak for peak in self.workers if peak is not None), default=None)


@contextmanager
def service(
    url: str,
    *,
    workers: int = 1,
    settings: Mapping[str, str] | None = None,
    peaks: PeakMemory | None = None,
    source: Path | None = None,
) -> Iterator[httpx.Client]:
    """`store-monitor serve` and `workers` `store-monitor worker` processes on a queue of their
    own, keys required as in production; a client of it that sends an admin key.

    `settings`: more of every process's settings, by name (`{"max_concurrent_jobs": "1"}`).
    `peaks`, if given, is filled with the processes' peak memory as they stop. `source`: the
    `src` folder of another revision of the package, run instead of this one."""
    server_key = secrets.token_urlsafe(32)
    environment = _environment(
        database_url=url,
        redis_url=REDIS_URL,
        queue_name=f"store-monitor-bench:{uuid4().hex[:8]}",
        auth="required",
        secret_key=server_key,
        **(settings or {}),
    )
    if source is not None:
        environment["PYTHONPATH"] = str(source)
    key = asyncio.run(_new_key(url, server_key))
    with _processes(environment, workers=workers, key=key, peaks=peaks) as client:
        yield client


@contextmanager
def embedded_data_dir(root: Path, data: Path) -> Iterator[Path]:
    """A new embedded data directory holding the files of `data`, loaded by the CLI."""
    data_dir = root / f"embedded-{uuid4().hex[:8]}"
    environment = _environment(data_dir=str(data_dir), sample_data="false")
    try:
        subprocess.run([*_COMMAND, "ingest", "--data", str(data)], env=environment, check=True)
        yield data_dir
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.with_name(data_dir.name + ".lock").unlink(missing_ok=True)


@contextmanager
def embedded_service(data_dir: Path) -> Iterator[httpx.Client]:
    """`store-monitor serve` in the embedded mode (open, on 127.0.0.1), on `data_dir`."""
    environment = _environment(data_dir=str(data_dir), sample_data="false")
    with _processes(environment, workers=0, key=None) as client:
        yield client


@contextmanager
def _processes(
    environment: dict[str, str], *, workers: int, key: str | None, peaks: PeakMemory | None = None
) -> Iterator[httpx.Client]:
    port = _free_port()
    processes = [
        subprocess.Popen([*_COMMAND, "serve", "--port", str(port)], env=environment),
        *(subprocess.Popen([*_COMMAND, "worker"], env=environment) for _ in range(workers)),
    ]
    if peaks is not None:
        peaks.pids = [process.pid for process in processes]
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the service did not become ready within 60 s")
            time.sleep(0.2)
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, timeout=60, headers=headers) as client:
            yield client
    finally:
        if peaks is not None:
            peaks.read()
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)
