"""The process's memory settings: Polars' allocator as the package sets it, the C heap's trim."""

import os
import subprocess
import sys

from store_monitor.memory import release_freed_heap


def allocator_settings(environment: dict[str, str]) -> str:
    """Polars' allocator settings in a new process that imports the package, then Polars."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, store_monitor, polars; print(os.environ['_RJEM_MALLOC_CONF'])",
        ],
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_polars_allocator_returns_large_blocks_as_freed() -> None:
    environment = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    # Polars' own settings first, then the package's, which jemalloc applies last.
    assert allocator_settings(environment).endswith(",oversize_threshold:65536")


def test_the_environments_allocator_settings_win() -> None:
    shown = allocator_settings({**os.environ, "_RJEM_MALLOC_CONF": "narenas:2"})
    assert shown.endswith(",narenas:2")
    assert "oversize_threshold" not in shown


def test_releasing_the_freed_heap_keeps_live_data() -> None:
    kept = bytes(range(256)) * 40_000
    garbage = [bytearray(1 << 20) for _ in range(8)]
    del garbage
    release_freed_heap()
    assert kept == bytes(range(256)) * 40_000
