"""Report routes: trigger a report, poll it, download its CSV, read its metadata."""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import APIRouter, Body, Header, Path, Request, Response, status
from fastapi.routing import APIRoute
from pydantic import WithJsonSchema
from starlette.types import Message, Receive

from store_monitor import reports
from store_monitor.api import downloads
from store_monitor.api.deps import QueueDep, SessionDep, SessionmakerDep
from store_monitor.api.errors import (
    DATABASE_UNAVAILABLE,
    ApiError,
    documented,
    payload_too_large,
)
from store_monitor.api.schemas import (
    EXAMPLE_REPORT_ID,
    ReportMetadata,
    ReportState,
    TriggerReportRequest,
    TriggerReportResponse,
    WireReportStatus,
    wire_status,
)
from store_monitor.db.models import Report, ReportStatus

MAX_BODY_BYTES: Final = 64 * 1024
"""Of any request to these routes: the trigger's JSON options are a few dozen bytes."""


class _SmallBodyRoute(APIRoute):
    """A route that reads at most `MAX_BODY_BYTES` of body, answering 413 beyond.

    FastAPI reads a body whole before it validates anything; so does Starlette's own limit,
    whose 413 is plain text. This one reads the body first, counting as it comes (a missing or
    false Content-Length gets no more in), then hands it to FastAPI.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def read_then_handle(request: Request) -> Response:
            body = await _capped_body(request, MAX_BODY_BYTES)
            return await handle(Request(request.scope, _replay(body, request.receive)))

        return read_then_handle


async def _capped_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _body_too_large(limit)
    chunks, received = [], 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _body_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` with the body, already read, handed out again first."""
    pending: bytes | None = body

    async def replaying() -> Message:
        nonlocal pending
        if pending is None:
            return await receive()  # what comes after the body, e.g. the client disconnecting
        message: Message = {"type": "http.request", "body": pending, "more_body": False}
        pending = None
        return message

    return replaying


def _body_too_large(limit: int) -> ApiError:
    return payload_too_large(limit, what="request body", limit_name="max_body_bytes")


router = APIRouter(tags=["reports"], route_class=_SmallBodyRoute)

_CSV_CONTENT: Final = {
    "text/csv": {
        "schema": {"type": "string"},
        "example": "store_id,uptime_last_hour,uptime_last_day,uptime_last_week,"
        "downtime_last_hour,downtime_last_day,downtime_last_week\n"
        "8419537941919820732,60.00,20.50,130.25,0.00,1.50,9.75\n",
    }
}
_STATUS_HEADER: Final = "X-Report-Status"
_CSV_MEDIA_TYPE: Final = "text/csv; charset=utf-8"


def _header(description: str, **schema: object) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string", **schema}}


_VALIDATOR_HEADERS: Final = {
    "ETag": _header(
        "Strong: the SHA-256 of the CSV in hex, quoted, with `-gzip` appended to it when the "
        "body is gzip-coded. Send it back in `If-None-Match` to get a 304 while it is current."
    ),
    "Cache-Control": _header(
        "`private, no-cache`: keep it, but revalidate (a recomputation replaces it).",
        enum=[downloads.CACHE_CONTROL],
    ),
    "Vary": _header("`Accept-Encoding`.", enum=["Accept-Encoding"]),
}
_CSV_HEADERS: Final = {
    "Content-Disposition": _header('`attachment; filename="report-{report_id}.csv"`'),
    _STATUS_HEADER: _header("Always `Complete` with the CSV."),
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
    **_VALIDATOR_HEADERS,
}
_NOT_MODIFIED: Final[dict[int | str, dict[str, Any]]] = {
    304: {
        "description": "`If-None-Match` named the current ETag: the copy the client has is "
        "current. No body.",
        "headers": _VALIDATOR_HEADERS,
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
# The body is optional; a model default (not `None`) keeps its schema a plain object, which
# client generators turn into an optional argument they leave out of the request when unset.
_NO_OPTIONS: Final = TriggerReportRequest()
_NOT_FOUND: Final = {404: "No report has this id (`report_not_found`)."}
_INVALID: Final = {
    422: "The request is malformed (`invalid_request`), e.g. an id that is not a UUID."
}
_UNAVAILABLE: Final = {503: DATABASE_UNAVAILABLE}


@router.post(
    "/trigger_report",
    operation_id="trigger_report",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TriggerReportResponse,
    response_description="Queued; with a known Idempotency-Key, that key's report instead.",
    responses={
        202: {
            "headers": {
                "Idempotent-Replayed": {
                    "description": "`true` when the Idempotency-Key named an existing report.",
                    "schema": {"type": "string", "enum": ["true"]},
                }
            }
        },
        **documented(
            {
                400: "The body cannot be read as JSON text (`bad_request`).",
                409: "The Idempotency-Key was used with another as_of (`idempotency_key_reused`).",
                413: f"The body is over {MAX_BODY_BYTES} bytes (`payload_too_large`).",
                **_INVALID,
                503: "The job queue cannot be reached; the report is failed (`queue_unavailable`). "
                "Or the database cannot be reached or is overloaded (`database_unavailable`).",
            }
        ),
    },
    summary="Start computing a report",
)
async def trigger_report(
    sessionmaker: SessionmakerDep,
    queue: QueueDep,
    response: Response,
    body: Annotated[TriggerReportRequest, Body()] = _NO_OPTIONS,
    idempotency_key: Annotated[
        str | None,
        # An optional header is absent, never null: the schema says string, not string-or-null.
        WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 255}),
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Retrying with the same key returns the same report instead of a new one.",
        ),
    ] = None,
) -> TriggerReportResponse:
    """Queue a new report and return its id at once; poll `GET /get_report/{report_id}`."""
    try:
        created = await reports.create_report(
            sessionmaker, queue.enqueue_report, as_of=body.as_of, idempotency_key=idempotency_key
        )
    except reports.IdempotencyKeyReused as error:
        raise ApiError(
            status.HTTP_409_CONFLICT,
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a report with a different as_of",
            {"report_id": str(error.report.id)},
        ) from error
    except reports.NotEnqueued as error:
        raise ApiError(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "queue_unavailable",
            "the report could not be queued; try again later",
            {"report_id": str(error.report_id), "reason": error.reason},
        ) from error
    if not created.created:
        response.headers["Idempotent-Replayed"] = "true"
    return TriggerReportResponse(
        report_id=created.report.id, status=wire_status(created.report.status)
    )


@router.get(
    "/get_report/{report_id}",
    operation_id="get_report",
    response_model=ReportState,
    responses={
        200: {
            "description": "The report's state as JSON until it is complete, then its CSV.",
            "content": _CSV_CONTENT,
            "headers": {
                **_CSV_HEADERS,
                _STATUS_HEADER: {
                    "description": "`Running`, `Failed` or `Complete`: which body this is.",
                    "schema": {"type": "string", "enum": ["Running", "Failed", "Complete"]},
                },
            },
        },
        **_NOT_MODIFIED,
        **documented({**_NOT_FOUND, **_INVALID, **_UNAVAILABLE}),
    },
    summary="Poll a report; its CSV once complete",
)
async def get_report(
    report_id: ReportId,
    session: SessionDep,
    request: Request,
    response: Response,
    if_none_match: IfNoneMatch = None,
) -> ReportState | Response:
    """`{"status": "Running"}` while queued or computing, the CSV once complete,
    `{"status": "Failed", "error": ...}` if it failed.

    One response, two content types: generated clients read it as JSON only. They poll
    `GET /reports/{report_id}` and download `GET /reports/{report_id}/csv` instead.
    """
    report = await _existing(session, report_id)
    if report.status is ReportStatus.complete:
        answer = await _csv_answer(session, request, report, if_none_match)
        if answer is not None:
            return answer
        report = await _existing_again(session, report)
    if report.status is ReportStatus.failed:
        state = ReportState(report_id=report.id, status=WireReportStatus.Failed, error=report.error)
    else:
        # Pending or running: to a client polling for the CSV, both mean "not yet".
        state = ReportState(report_id=report.id, status=WireReportStatus.Running)
    response.headers[_STATUS_HEADER] = state.status.value
    return state


@router.get(
    "/reports/{report_id}",
    operation_id="get_report_metadata",
    response_model=ReportMetadata,
    response_description="The report's state, and its figures once complete.",
    responses=documented({**_NOT_FOUND, **_INVALID, **_UNAVAILABLE}),
    summary="A report's state and figures",
)
async def get_report_metadata(report_id: ReportId, session: SessionDep) -> ReportMetadata:
    return ReportMetadata.of(await _existing(session, report_id))


@router.get(
    "/reports/{report_id}/csv",
    operation_id="download_report_csv",
    response_class=Response,
    responses={
        200: {
            "description": "The report as CSV.",
            "content": _CSV_CONTENT,
            "headers": _CSV_HEADERS,
        },
        **_NOT_MODIFIED,
        **documented(
            {
                **_NOT_FOUND,
                409: "The report is not complete (`report_not_complete`); see its status.",
                **_INVALID,
                **_UNAVAILABLE,
            }
        ),
    },
    summary="Download a complete report's CSV",
)
async def download_report_csv(
    report_id: ReportId, session: SessionDep, request: Request, if_none_match: IfNoneMatch = None
) -> Response:
    report = await _existing(session, report_id)
    if report.status is ReportStatus.complete:
        answer = await _csv_answer(session, request, report, if_none_match)
        if answer is not None:
            return answer
        report = await _existing_again(session, report)
    raise ApiError(
        status.HTTP_409_CONFLICT,
        "report_not_complete",
        f"report {report_id} is {wire_status(report.status).value}, not Complete",
        {"status": wire_status(report.status).value, "error": report.error},
    )


async def _existing(session: SessionDep, report_id: UUID) -> Report:
    report = await reports.get_report(session, report_id)
    if report is None:
        raise ApiError(
            status.HTTP_404_NOT_FOUND,
            "report_not_found",
            f"no report with id {report_id}",
            {"report_id": str(report_id)},
        )
    return report


async def _existing_again(session: SessionDep, report: Report) -> Report:
    """The report as it is now: complete a moment ago, it has been recomputing (or failed) since."""
    session.expunge(report)
    return await _existing(session, report.id)


async def _csv_answer(
    session: SessionDep, request: Request, report: Report, if_none_match: str | None
) -> Response | None:
    """The complete report's CSV, or a 304; None if it is no longer complete.

    Everything is read before the route returns, and the session with it: the body is sent
    without a database connection (see `reports.report_file`).
    """
    gzipped = downloads.select_gzip(request)
    if if_none_match is not None:
        # A revalidation reads the digest only, not the file.
        current = await reports.report_file(session, report.id, content=False)
        if current is None:
            return None
        if downloads.not_modified(
            if_none_match, downloads.entity_tag(current.info, gzipped=gzipped)
        ):
            return downloads.not_modified_response(current.info, gzipped=gzipped)
    stored = await reports.report_file(session, report.id, content=True)
    if stored is None:
        return None
    assert stored.gzip is not None
    return downloads.file_response(
        stored.info,
        stored.gzip,
        gzipped=gzipped,
        media_type=_CSV_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="report-{report.id}.csv"',
            _STATUS_HEADER: WireReportStatus.Complete.value,
        },
    )
