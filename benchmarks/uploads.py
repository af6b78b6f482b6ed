"""Uploads in bounded memory: the API's peak resident memory while it takes a ~200 MB polls
file, and a 50 MB line with no line break, against a real `store-monitor serve` process.

The growth is the API's peak (`VmHWM`) after the upload less its resident memory (`VmRSS`)
just before: what the upload itself cost, whatever the process held at start. The polls upload
is also sent to the code of a baseline revision (the one before uploads were streamed), in the
same run, so that both are measured at the same moment of a shared machine.
"""

import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmarks.databases import database
from benchmarks.processes import PeakMemory, peak_resident_bytes, service
from benchmarks.report import data_set
from benchmarks.table import print_table
from store_monitor import frames

MIB = 1024 * 1024
POLLS_GROWTH_TARGET = 200 * MIB
LINE_GROWTH_TARGET = 100 * MIB
BASELINE = "ff5a450"
"""The revision before uploads were streamed: its rows/s is the target."""
_UNTERMINATED_BYTES = 50 * 1000 * 1000
_SENT_BYTES = 1 * MIB


def resident_bytes(pid: int) -> int:
    """A running process's resident memory now (`VmRSS`)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == "VmRSS":
            return int(value.split()[0]) * 1024
    raise RuntimeError(f"process {pid} has no VmRSS")


def _file_pieces(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        while piece := file.read(_SENT_BYTES):
            yield piece


def _unterminated_line() -> Iterator[bytes]:
    yield b"store_id,status,timestamp_utc\n1,"
    for _ in range(_UNTERMINATED_BYTES // _SENT_BYTES):
        yield b"y" * _SENT_BYTES


def _upload(
    client: httpx.Client, api_pid: int, body: Iterator[bytes]
) -> tuple[httpx.Response, float, int]:
    """The answer to a streamed text/csv polls upload, its seconds and the API's growth."""
    before = resident_bytes(api_pid)
    started = time.perf_counter()
    response = client.post(
        "/ingest/polls", content=body, headers={"Content-Type": "text/csv"}, timeout=600
    )
    seconds = time.perf_counter() - started
    peak = peak_resident_bytes(api_pid)
    assert peak is not None
    return response, seconds, peak - before


def _mib(size: int) -> str:
    return f"{size / MIB:,.0f} MiB"


@contextmanager
def _revision_source(revision: str) -> Iterator[Path]:
    """The `src` folder of `revision` of this repository, beside its `alembic` folder."""
    with tempfile.TemporaryDirectory(prefix="store-monitor-baseline-") as folder:
        archive = subprocess.run(
            ["git", "archive", revision, "src", "alembic"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        yield Path(folder) / "src"


def _polls_upload(polls_file: Path, source: Path | None) -> tuple[int, int, float, int]:
    """A polls upload into a fresh database and service: its status, rows, seconds, growth."""
    with database(source) as url:
        peaks = PeakMemory()
        with service(url, workers=0, peaks=peaks, source=source) as client:
            polls, seconds, growth = _upload(client, peaks.pids[0], _file_pieces(polls_file))
        rows = int(polls.raise_for_status().json()["rows_received"])
    return polls.status_code, rows, seconds, growth


def run(root: Path, *, baseline: str = BASELINE) -> None:
    folder = data_set(root, stores=14_000, days=12)
    polls_file = folder / frames.POLLS_FILE
    size = polls_file.stat().st_size
    # A service of its own for each upload: a peak is a high-water mark, which the other
    # upload's would hide.
    with database() as url:
        peaks = PeakMemory()
        with service(url, workers=0, peaks=peaks) as client:
            line, _, line_growth = _upload(client, peaks.pids[0], _unterminated_line())
    if line.status_code != 422:
        raise RuntimeError(f"the unterminated line answered {line.status_code}")
    with _revision_source(baseline) as source:
        before = _polls_upload(polls_file, source)
    status, rows, seconds, growth = _polls_upload(polls_file, None)
    rate, before_rate = rows / seconds, before[1] / before[2]
    print_table(
        "Uploads: the API's memory (peak during the upload less resident before it)",
        ["upload", "code", "answer", "API growth", "target", "rows/s", "target"],
        [
            [
                f"polls, {size / 1e6:,.0f} MB, {rows:,} rows",
                f"before ({baseline})",
                f"{before[0]} in {before[2]:.1f} s",
                _mib(before[3]),
                f"<= {_mib(POLLS_GROWTH_TARGET)}",
                f"{before_rate:,.0f}",
                "",
            ],
            [
                "",
                "this",
                f"{status} in {seconds:.1f} s",
                _mib(growth),
                f"<= {_mib(POLLS_GROWTH_TARGET)}",
                f"{rate:,.0f}",
                f">= {before_rate:,.0f} (before)",
            ],
            [
                f"one {_UNTERMINATED_BYTES / 1e6:,.0f} MB line, no line break",
                "this",
                str(line.status_code),
                _mib(line_growth),
                f"<= {_mib(LINE_GROWTH_TARGET)}",
                "",
                "",
            ],
        ],
    )
