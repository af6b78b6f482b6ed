"""Logging of the service's processes: JSON lines for log collectors, plain lines on a terminal,
each line carrying the id of the request it serves (or of the request that created its report)."""

import json as jsonlib
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final, TextIO

request_id: ContextVar[str | None] = ContextVar("store_monitor_request_id", default=None)
"""The id of the request being served, or of the request whose report is being computed."""

# What every LogRecord has; anything else on a record came from `extra=` and is logged too,
# but for uvicorn's copy of its message with terminal colours.
_RECORD_FIELDS: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message"}
)


@contextmanager
def request_context(value: str | None) -> Iterator[None]:
    """Log lines written inside the block carry `value` as their request id."""
    token = request_id.set(value)
    try:
        yield
    finally:
        request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Puts the current request id on each record as `record.request_id` (None outside requests).

    On the handler, not a logger: a logger's filters skip records propagated from its children.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request_id, the
    record's `extra` fields, and the traceback of an exception if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return jsonlib.dumps(line, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """`time level logger [request id] message`, for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s%(request)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        value = getattr(record, "request_id", None)
        record.request = f" [{value}]" if value else ""
        return super().formatMessage(record)


class _Handler(logging.StreamHandler[TextIO]):
    """The handler `configure_logging` installs, told apart from others by its class."""


def configure_logging(
    level: str | int, *, json: bool | None = None, stream: TextIO | None = None
) -> logging.Handler:
    """Send every logger's records to `stream` (stderr), as JSON lines unless it is a terminal.

    For the service's entry points (`serve`, `worker`); nothing calls it at import. Calling it
    again replaces the handler it installed before; other handlers are left alone.
    Returns the handler it installed.
    """
    stream = stream if stream is not None else sys.stderr
    if json is None:
        json = not stream.isatty()
    handler = _Handler(stream)
    handler.setFormatter(JsonFormatter() if json else ConsoleFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        if isinstance(old, _Handler):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
