"""The committed openapi.json is the app's OpenAPI document, byte for byte."""

import difflib
import json
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


def test_get_report_describes_its_csv_first() -> None:
    # Client generators type a response by its first content type: as text, both of this
    # route's bodies reach the caller; typed as the JSON state, the CSV fails to parse.
    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    ok = document["paths"]["/get_report/{report_id}"]["get"]["responses"]["200"]
    assert list(ok["content"]) == ["text/csv", "application/json"]
    assert ok["content"]["text/csv"]["schema"] == {"type": "string"}
    assert ok["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReportState"
    }
