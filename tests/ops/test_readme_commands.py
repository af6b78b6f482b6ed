"""The README's commands run as written against `make run`'s service: the embedded mode with its
sample loaded. Every shell block that talks to the service (with curl) is run, in order, in one
shell (they share `base`, `report_id`, `store`); a block that needs what only the reader has
says so on its first line (`# needs your own …`) and is skipped, by name."""

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import httpx

from support.processes import environment, free_port, ready
from support.service import embedded_data_dir

README = Path(__file__).resolve().parents[2] / "README.md"
README_BASE = "http://127.0.0.1:8000"
"""Where the README says `make run` serves; the test's service has a port of its own."""
SKIP_MARKER = "# needs your own "
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SHELL_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)


def service_blocks() -> tuple[list[str], list[str]]:
    """The README's shell blocks that talk to the service: those to run, those marked skipped."""
    run: list[str] = []
    skipped: list[str] = []
    for block in _SHELL_BLOCK.findall(README.read_text(encoding="utf-8")):
        if "curl " not in block:
            continue  # make, uv and the CLI: not requests to the service
        (skipped if block.startswith(SKIP_MARKER) else run).append(block)
    return run, skipped


def test_the_readme_marks_what_it_cannot_run() -> None:
    run, skipped = service_blocks()
    assert len(run) >= 3
    # The uploads of the reader's own files, and a call with the reader's own key.
    assert [block.splitlines()[0] for block in skipped] == [
        "# needs your own files: store_status.csv, menu_hours.csv, timezones.csv "
        "(the tests skip this block)",
        "# needs your own key: keys required, and SECRET from `keys create` "
        "(the tests skip this block)",
    ]


async def test_the_readme_commands_run_against_the_served_sample(tmp_path: Path) -> None:
    run, _ = service_blocks()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = environment(data_dir=str(embedded_data_dir(tmp_path)), sample_data="true")
    server = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "store_monitor.cli", "serve", "--port", str(port)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    work = tmp_path / "reader"
    work.mkdir()
    script = "set -euo pipefail\n" + "\n".join(block.replace(README_BASE, base) for block in run)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            await ready(client)
        shell = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            script,
            cwd=work,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        async with asyncio.timeout(120):
            out, err = await shell.communicate()
    finally:
        server.kill()
        await server.wait()
    assert shell.returncode == 0, f"{err.decode()}\n{out.decode()[-2000:]}"
    saved = sorted(path.name for path in work.iterdir())
    # The files the README says each command saves, under the names it says.
    assert [re.sub(_UUID, "<id>", name) for name in saved] == [
        "daily-<id>-sample-3572604301785489395.csv",
        "incidents-<id>.csv",
        "report-<id>.csv",
    ]
    # The bodies printed (one JSON after another): the store's, the summary, the history last.
    printed = out.decode()
    assert '{"report_id":' in printed
    assert '"worst_stores":[{"store_id":"sample-' in printed
    assert re.search(r'\{"store_id":"sample-\d+","reports":\[\{"report_id":.*\}\]\}', printed)
