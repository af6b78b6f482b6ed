"""wrk, the compiled load generator of the HTTP load benchmarks (never Python on the same cores):
installed from apt when missing, run with one of the Lua scripts in `wrk_scripts/`, its result
read back from the JSON line the script's `done()` prints last.

Debian's wrk is wrk 4, closed loop, with no fixed-rate mode (wrk2 is not packaged; h2load's
`--rate` paces new connections, not requests): `wrk_scripts/reads.lua` paces each connection's
requests itself and counts latency from when each was due.
"""

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

SCRIPTS: Final = Path(__file__).with_name("wrk_scripts")
FINISHED: Final = "finished"
"""What a script's thread prints once its work is done before the run's duration is over."""


def ensure_installed() -> str:
    """wrk's path; installs Debian's package first when it is missing (as root)."""
    found = shutil.which("wrk")
    if found is not None:
        return found
    if os.geteuid() != 0:
        raise SystemExit(
            "the load benchmarks need wrk: install it (Debian or Ubuntu: `sudo apt-get install "
            "wrk`) or run the benchmarks as root, which installs it"
        )
    print("installing wrk (apt-get install wrk) ...", flush=True)
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=environment)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"],
        check=True,
        env=environment,
    )
    installed = shutil.which("wrk")
    if installed is None:
        raise SystemExit("apt-get installed wrk, yet no `wrk` command is on PATH")
    return installed


@dataclass(frozen=True)
class Load:
    """One wrk run: `script` (a name in `wrk_scripts/`) against `base_url` for `seconds`."""

    script: str
    base_url: str
    seconds: int
    connections: int
    threads: int
    headers: Mapping[str, str] = field(default_factory=dict)
    arguments: Sequence[str] = ()
    """The script's own, given to its `init(args)`."""
    timeout_seconds: int = 10
    """A request unanswered for longer counts as a timeout error."""

    def command(self) -> list[str]:
        headers = [option for item in self.headers.items() for option in ("-H", ": ".join(item))]
        return [
            ensure_installed(),
            *("-t", str(self.threads), "-c", str(self.connections)),
            *("-d", f"{self.seconds}s", "--timeout", f"{self.timeout_seconds}s"),
            *headers,
            *("-s", str(SCRIPTS / f"{self.script}.lua")),
            self.base_url,
            "--",
            *self.arguments,
        ]


def start(load: Load) -> subprocess.Popen[str]:
    """wrk running `load`, in the background; `result` waits for it."""
    return subprocess.Popen(load.command(), stdout=subprocess.PIPE, text=True)


def result(process: subprocess.Popen[str], *, finishing_threads: int | None = None) -> Any:
    """The JSON the script's `done()` printed. With `finishing_threads`, wrk is interrupted (it
    then reports at once) as soon as that many of its threads have printed `finished`."""
    assert process.stdout is not None
    lines = []
    finished = 0
    for line in process.stdout:
        lines.append(line)
        if line.strip() == FINISHED:
            finished += 1
            if finished == finishing_threads:
                process.send_signal(signal.SIGINT)
    if process.wait() != 0:
        raise RuntimeError(f"wrk exited with {process.returncode}:\n{''.join(lines)}")
    last = next((line for line in reversed(lines) if line.startswith("{")), None)
    if last is None:
        raise RuntimeError(f"wrk printed no result:\n{''.join(lines)}")
    return json.loads(last)


def run(load: Load, *, finishing_threads: int | None = None) -> Any:
    return result(start(load), finishing_threads=finishing_threads)


def described(counts: Mapping[str, int]) -> str:
    """Counts by kind as text: "3 timeout, 1 read", or "0"."""
    return ", ".join(f"{count} {kind}" for kind, count in counts.items()) or "0"


def errors(figures: Mapping[str, Any]) -> dict[str, int]:
    """wrk's errors by kind, those that happened: sockets' (connect, read, write), timeouts, and
    answers of status 400 or over ("status")."""
    return {kind: count for kind, count in figures["errors"].items() if count}
