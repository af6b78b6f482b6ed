"""The committed openapi.json is the app's OpenAPI document, byte for byte."""

import difflib
from pathlib import Path

from typer.testing import CliRunner

from store_monitor.cli import app

OPENAPI = Path(__file__).resolve().parents[2] / "openapi.json"


def test_committed_openapi_json_is_the_apps() -> None:
    # The same command `make openapi` runs, so that regenerating always makes this pass.
    result = CliRunner().invoke(app, ["openapi"])
    assert result.exit_code == 0, result.output
    committed = OPENAPI.read_text(encoding="utf-8") if OPENAPI.is_file() else ""
    if result.stdout != committed:
        diff = difflib.unified_diff(
            committed.splitlines(),
            result.stdout.splitlines(),
            "openapi.json (committed)",
            "openapi.json (from the app)",
            lineterm="",
        )
        shown = "\n".join(list(diff)[:60])
        raise AssertionError(
            f"openapi.json differs from the app's OpenAPI document: run `make openapi` and "
            f"commit openapi.json.\n{shown}"
        )
