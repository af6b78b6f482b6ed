"""What ships: the wheel holds the package's data files; the container files parse, wire their
services, and run commands that exist."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from store_monitor.cli import app

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker" / "compose.yaml"
PACKAGE = ROOT / "src" / "store_monitor"


def test_the_wheel_holds_the_pages_assets(tmp_path: Path) -> None:
    """The docs pages' and the dashboard's files: templates, scripts, styles, vendored code."""
    # hatchling, as `uv build` runs it; in this environment, so without a network.
    built = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = tmp_path.glob("store_monitor-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    static = {
        path.relative_to(PACKAGE.parent).as_posix()
        for folder in (
            PACKAGE / "api" / "static",
            PACKAGE / "ui" / "static",
            PACKAGE / "ui" / "templates",
        )
        for path in folder.rglob("*")
        if path.is_file()
    }
    assert "store_monitor/api/static/vendor/swagger-ui/swagger-ui-bundle.js" in static
    assert "store_monitor/api/static/vendor/redoc/redoc.standalone.js" in static
    assert "store_monitor/ui/static/vendor/uplot/uPlot.iife.min.js" in static
    assert "store_monitor/ui/templates/store.html" in static
    assert static <= names, sorted(static - names)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


def test_compose_has_the_whole_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", "redis", "migrate", "api", "worker"}
    assert set(compose["volumes"]) == {"postgres-data", "redis-data"}


def test_every_dependency_is_a_service_with_a_matching_condition(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if rule["condition"] == "service_healthy":
                assert "test" in services[dependency].get("healthcheck", {}), dependency
            else:
                assert rule["condition"] == "service_completed_successfully"


def test_app_services_run_real_commands(compose: dict[str, Any]) -> None:
    runner = CliRunner()
    for name in ("migrate", "api", "worker"):
        command = compose["services"][name]["command"]
        assert command[0] == "store-monitor", name
        words = [word for word in command[1:] if not word.startswith("-")][:2]
        subcommand = words[:2] if words[0] == "db" else words[:1]
        result = runner.invoke(app, [*subcommand, "--help"])
        assert result.exit_code == 0, f"{name}: {' '.join(subcommand)}: {result.output}"


def test_app_services_point_at_the_compose_database_and_queue(compose: dict[str, Any]) -> None:
    for name in ("migrate", "api", "worker"):
        environment = compose["services"][name]["environment"]
        assert "@postgres:5432/" in environment["STORE_MONITOR_DATABASE_URL"]
        assert environment["STORE_MONITOR_REDIS_URL"].startswith("redis://redis:6379")


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="no docker compose client on this machine",
)
def test_docker_compose_config_parses() -> None:
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_make_targets_run_without_syncing_again() -> None:
    """`make install` syncs .venv; a `uv run` that synced again would recompile every library's
    bytecode and print so on each `make run` or `make test`."""
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "run", "test", "lint", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    runs = [line for line in dry.stdout.splitlines() if " run " in f" {line} " and "uv" in line]
    assert runs, dry.stdout
    assert all("run --no-sync" in line for line in runs), runs
