"""What the report routes declare in the OpenAPI document: their parameters, the CSV bodies
and headers they answer with, and their documented errors."""

from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import Header, Path, Query
from pydantic import WithJsonSchema

from store_monitor.api.schemas import ReportState
from store_monitor.api.wire import EXAMPLE_REPORT_ID
from store_monitor.sources import STORE_ID_MAX_CHARS, STORE_ID_PATTERN, STORE_ID_RULES
from store_monitor.web import downloads
from store_monitor.web.errors import DATABASE_UNAVAILABLE, documented

CSV_CONTENT: Final = {
    "text/csv": {
        "schema": {"type": "string"},
        "example": "store_id,uptime_last_hour,uptime_last_day,uptime_last_week,"
        "downtime_last_hour,downtime_last_day,downtime_last_week\n"
        "8419537941919820732,60.00,20.50,130.25,0.00,1.50,9.75\n",
    }
}
STATUS_HEADER: Final = "X-Report-Status"
CSV_MEDIA_TYPE: Final = "text/csv; charset=utf-8"


def _header(description: str, **schema: object) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string", **schema}}


VALIDATOR_HEADERS: Final = {
    "ETag": _header(
        "Strong: the SHA-256 of the CSV in hex, quoted, with `-gzip` appended to it when the "
        "body is gzip-coded. Send it back in `If-None-Match` to get a 304 while it is current."
    ),
    "Cache-Control": _header(
        "`private, no-cache`: keep it, but revalidate (an owner key's part follows the owners).",
        enum=[downloads.CACHE_CONTROL],
    ),
    "Vary": _header("`Accept-Encoding`.", enum=["Accept-Encoding"]),
}
CSV_HEADERS: Final = {
    "Content-Disposition": _header('`attachment; filename="report-{report_id}.csv"`'),
    STATUS_HEADER: _header("Always `Complete` with the CSV."),
    "Content-Length": {
        "description": "Always sent: the exact length of the body as sent (of the gzip bytes "
        "when gzip-coded); a shorter body is a cut download.",
        "schema": {"type": "integer"},
    },
    "Content-Encoding": _header(
        "`gzip` when the request's `Accept-Encoding` accepts it; absent otherwise.", enum=["gzip"]
    ),
    downloads.ROW_COUNT_HEADER: {
        "description": "Data rows in the CSV, the header line not counted.",
        "schema": {"type": "integer"},
    },
    **VALIDATOR_HEADERS,
}
# The incidents' and daily figures' CSVs: made from their rows for each request, sent whole.
DETAIL_CSV_HEADERS: Final = {
    "Content-Disposition": _header(
        '`attachment; filename="incidents-{report_id}.csv"` or `daily-…`; with `store_id`, '
        "`incidents-{report_id}-{store_id}.csv` (in `filename*` when the store id is not plain "
        "ASCII letters, digits, `.`, `_` and `-`)"
    ),
    STATUS_HEADER: _header("Always `Complete` with the CSV."),
    "Content-Length": {
        "description": "Always sent: the exact length of the body; a shorter body is a cut "
        "download.",
        "schema": {"type": "integer"},
    },
}
NOT_MODIFIED: Final[dict[int | str, dict[str, Any]]] = {
    304: {
        "description": "`If-None-Match` named the current ETag: the copy the client has is "
        "current. No body.",
        "headers": VALIDATOR_HEADERS,
    }
}
IfNoneMatch = Annotated[
    str | None,
    WithJsonSchema({"type": "string"}),
    Header(
        alias="If-None-Match",
        description="ETags of copies the client has; the current one gets a 304, not the CSV.",
    ),
]
ReportId = Annotated[
    UUID,
    Path(
        description="The id `POST /trigger_report` returned.",
        examples=[EXAMPLE_REPORT_ID],
    ),
]
NOT_FOUND: Final = {404: "No report has this id (`report_not_found`)."}
NOT_FOUND_WITH_STORE: Final = {
    404: "No report has this id (`report_not_found`), or the report has no such store "
    "(`store_not_found`)."
}
NOT_COMPLETE: Final = {409: "The report is not complete (`report_not_complete`); see its status."}
INVALID: Final = {
    422: "The request is malformed (`invalid_request`), e.g. an id that is not a UUID."
}
UNAVAILABLE: Final = {503: DATABASE_UNAVAILABLE}


INCIDENTS_CONTENT: Final = {
    "text/csv": {
        "schema": {"type": "string"},
        "example": "store_id,started_at,ended_at,minutes\n"
        "8419537941919820732,2023-01-24T10:44:30.000000Z,2023-01-24T12:00:00.000000Z,75.50\n",
    }
}
DAILY_CONTENT: Final = {
    "text/csv": {
        "schema": {"type": "string"},
        "example": "store_id,date,uptime_hours,downtime_hours\n"
        "8419537941919820732,2023-01-24,10.74,1.26\n",
    }
}
_STORE_ID_SCHEMA: Final = WithJsonSchema(
    {"type": "string", "minLength": 1, "maxLength": STORE_ID_MAX_CHARS, "pattern": STORE_ID_PATTERN}
)


def _store_id_query(description: str) -> Any:
    """An optional store id in the query, held to the rules of every accepted store id."""
    return Query(**STORE_ID_RULES, description=description)


StoreIdFilter = Annotated[
    str | None,
    _STORE_ID_SCHEMA,
    _store_id_query("Only this store's rows; 404 if the report has no such store."),
]
LiveStoreIdFilter = Annotated[
    str | None,
    _STORE_ID_SCHEMA,
    _store_id_query("Only this store, if it is down now (else no store; never a 404)."),
]


def _store_id_path(description: str) -> Any:
    """A store id in the path, held to the rules of every accepted store id."""
    return Path(**STORE_ID_RULES, description=description, examples=["8419537941919820732"])


StoreId = Annotated[
    str,
    _store_id_path(
        "A store of the report, as in its CSV, percent-encoded as one path segment "
        "(`/` as `%2F`, `%` as `%25`, `?` as `%3F`, `#` as `%23`)."
    ),
]
AnyReportStoreId = Annotated[
    str,
    _store_id_path(
        "A store, as in reports' CSVs, percent-encoded as one path segment "
        "(`/` as `%2F`, `%` as `%25`, `?` as `%3F`, `#` as `%23`)."
    ),
]
"""A store of any report (its history), rather than of the one in the path."""
POLL_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "model": ReportState,
        "description": "The report's CSV once it is complete; until then its state as JSON. "
        "`X-Report-Status` says which: generated clients hand back either body as text.",
        "content": {**CSV_CONTENT, "application/json": {}},
        "headers": {
            **CSV_HEADERS,
            STATUS_HEADER: {
                "description": "`Running`, `Failed` or `Complete`: which body this is.",
                "schema": {"type": "string", "enum": ["Running", "Failed", "Complete"]},
            },
        },
    },
    **NOT_MODIFIED,
    **documented({**NOT_FOUND, **INVALID, **UNAVAILABLE}),
}
"""Of `GET /get_report/{report_id}`: the CSV once complete, the state as JSON until then."""
CSV_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "description": "The report as CSV.",
        "content": CSV_CONTENT,
        "headers": CSV_HEADERS,
    },
    **NOT_MODIFIED,
    **documented(
        {
            **NOT_FOUND,
            **NOT_COMPLETE,
            **INVALID,
            **UNAVAILABLE,
        }
    ),
}


def detail_csv_responses(description: str, content: dict[str, Any]) -> dict[int | str, Any]:
    """Of a CSV made from the report's rows for each request (incidents, daily figures)."""
    return {
        200: {"description": description, "content": content, "headers": DETAIL_CSV_HEADERS},
        **documented({**NOT_FOUND_WITH_STORE, **NOT_COMPLETE, **INVALID, **UNAVAILABLE}),
    }
