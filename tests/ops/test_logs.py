"""Log lines: JSON when stderr is not a terminal, plain text on one, each with its request id;
and nothing configured by importing the service."""

import io
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from store_monitor.logs import configure_logging, request_context

log = logging.getLogger("store_monitor.tests")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, its handlers and level put back after the test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_when_stderr_is_not_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    with request_context("req-1"):
        log.info("hello %s", "world", extra={"report_id": "r-1", "rows": 3})
    log.debug("not at INFO")
    try:
        raise ValueError("bad value")
    except ValueError:
        log.exception("it failed")

    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first.pop("time").endswith("+00:00")
    assert first == {
        "level": "INFO",
        "logger": "store_monitor.tests",
        "message": "hello world",
        "request_id": "req-1",
        "report_id": "r-1",
        "rows": 3,
    }
    assert (second["message"], second["request_id"]) == ("it failed", None)
    assert second["exception"].startswith("Traceback (most recent call last):")
    assert second["exception"].endswith("ValueError: bad value")


def test_plain_lines_on_a_terminal() -> None:
    stream = Terminal()
    configure_logging(logging.INFO, stream=stream)
    with request_context("req-2"):
        log.warning("in a request")
    log.info("outside")

    inside, outside = stream.getvalue().splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.fullmatch(rf"{stamp} WARNING store_monitor.tests \[req-2\] in a request", inside)
    assert re.fullmatch(rf"{stamp} INFO    store_monitor.tests outside", outside)


def test_the_format_can_be_forced() -> None:
    stream = Terminal()
    configure_logging("INFO", json=True, stream=stream)
    log.info("machine readable")
    assert json.loads(stream.getvalue())["message"] == "machine readable"


def test_configuring_again_replaces_only_its_own_handler(root_logger: logging.Logger) -> None:
    others = root_logger.handlers[:]
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", stream=first)
    configure_logging("INFO", stream=second)
    log.info("once")
    assert first.getvalue() == ""
    assert len(second.getvalue().splitlines()) == 1
    assert root_logger.handlers[: len(others)] == others


def test_importing_the_service_configures_no_logging() -> None:
    code = (
        "import logging, store_monitor.cli, store_monitor.web.app, store_monitor.worker.config;"
        "root = logging.getLogger(); print(len(root.handlers), root.level)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["0", str(logging.WARNING)]
