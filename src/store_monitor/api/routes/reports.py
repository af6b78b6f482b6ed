"""Report routes: trigger a report, poll it, read its metadata and its stores, download its
CSVs, list reports, delete one."""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response, Security, status
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import WithJsonSchema
from starlette.types import Message, Receive

from store_monitor import reports
from store_monitor.access import Principal
from store_monitor.api import downloads, filenames
from store_monitor.api.auth import MANAGE_REPORTS, READ_REPORTS, ReportReaderDep
from store_monitor.api.body_limit import BodyLimit
from store_monitor.api.deps import QueueDep, SessionDep, SessionmakerDep, SettingsDep
from store_monitor.api.errors import DATABASE_UNAVAILABLE, ApiError, documented, invalid_request
from store_monitor.api.schemas import (
    EXAMPLE_REPORT_ID,
    ReportList,
    ReportMetadata,
    ReportState,
    StoreReport,
    TriggerReportRequest,
    TriggerReportResponse,
    WireReportStatus,
    decode_cursor,
    encode_cursor,
    store_report,
    stored_status,
    wire_status,
)
from store_monitor.db.models import Report, ReportStatus
from store_monitor.sources import STORE_ID_MAX_CHARS, STORE_ID_PATTERN

MAX_BODY_BYTES: Final = 64 * 1024
"""Of any request to these routes: the trigger's JSON options are a few dozen bytes."""
_BODY_LIMIT: Final = BodyLimit(MAX_BODY_BYTES, what="request body", limit_name="max_body_bytes")
MAX_PAGE: Final = 200
"""Reports per page of `GET /reports` at most."""


class _SmallBodyRoute(APIRoute):
    """A route that reads at most `MAX_BODY_BYTES` of body, answering 413 beyond.

    FastAPI reads a body whole before it validates anything; so does Starlette's own limit,
    whose 413 is plain text. This one reads the body first, counting as it comes (a missing or
    false Content-Length gets no more in), then hands it to FastAPI.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def read_then_handle(request: Request) -> Response:
            body = await _BODY_LIMIT.read(request)
            return await handle(Request(request.scope, _replay(body, request.receive)))

        return read_then_handle


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


# Every report route needs the reports scope (or an owner key, whose downloads are narrowed).
router = APIRouter(
    tags=["reports"], route_class=_SmallBodyRoute, dependencies=[Security(READ_REPORTS)]
)

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
        "`private, no-cache`: keep it, but revalidate (an owner key's part follows the owners).",
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
# The incidents' and daily figures' CSVs: made from their rows for each request, sent whole.
_DETAIL_CSV_HEADERS: Final = {
    "Content-Disposition": _header(
        '`attachment; filename="incidents-{report_id}.csv"` or `daily-…`; with `store_id`, '
        "`incidents-{report_id}-{store_id}.csv` (in `filename*` when the store id is not plain "
        "ASCII letters, digits, `.`, `_` and `-`)"
    ),
    _STATUS_HEADER: _header("Always `Complete` with the CSV."),
    "Content-Length": {
        "description": "Always sent: the exact length of the body; a shorter body is a cut "
        "download.",
        "schema": {"type": "integer"},
    },
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
_NOT_FOUND_WITH_STORE: Final = {
    404: "No report has this id (`report_not_found`), or the report has no such store "
    "(`store_not_found`)."
}
_NOT_COMPLETE: Final = {409: "The report is not complete (`report_not_complete`); see its status."}
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
    settings: SettingsDep,
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
    if body.as_of is not None and body.as_of > settings.latest_allowed_poll:
        # The schema checks the lower bound; the upper one moves with the clock, as for polls.
        raise invalid_request(
            "body.as_of", "as_of must be no later than the current time plus the allowed skew"
        )
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
    # Both bodies are described in `responses`, the CSV first: client generators type a response
    # by its first content type, and as text both bodies reach the caller (typed as ReportState,
    # the CSV failed to parse). A response class without a media type of its own keeps FastAPI
    # from putting its JSON ahead of them.
    response_class=Response,
    response_model=None,
    responses={
        200: {
            "model": ReportState,
            "description": "The report's CSV once it is complete; until then its state as JSON. "
            "`X-Report-Status` says which: generated clients hand back either body as text.",
            "content": {**_CSV_CONTENT, "application/json": {}},
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
    principal: ReportReaderDep,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """`{"status": "Running"}` while queued or computing, the CSV once complete,
    `{"status": "Failed", "error": ...}` if it failed.

    Typed clients may rather poll `GET /reports/{report_id}` and download
    `GET /reports/{report_id}/csv`, whose bodies are one type each.
    """
    report = await _existing(session, report_id)
    if report.status is ReportStatus.complete:
        answer = await _csv_answer(session, request, report, principal, if_none_match)
        if answer is not None:
            return answer
        report = await _existing_again(session, report)
    if report.status is ReportStatus.failed:
        state = ReportState(report_id=report.id, status=WireReportStatus.Failed, error=report.error)
    else:
        # Pending or running: to a client polling for the CSV, both mean "not yet".
        state = ReportState(report_id=report.id, status=WireReportStatus.Running)
    return JSONResponse(state.model_dump(mode="json"), headers={_STATUS_HEADER: state.status.value})


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
    "/reports",
    operation_id="list_reports",
    response_model=ReportList,
    response_description="A page of reports, newest first.",
    responses=documented(
        {
            422: "A parameter is out of range, or `cursor` is not one this API gave "
            "(`invalid_request`).",
            **_UNAVAILABLE,
        }
    ),
    summary="List reports, newest first",
)
async def list_reports(
    session: SessionDep,
    status_filter: Annotated[
        WireReportStatus | None,
        WithJsonSchema({"$ref": "#/components/schemas/WireReportStatus"}),
        Query(alias="status", description="Only reports in this status."),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE, description=f"Reports per page, at most {MAX_PAGE}.")
    ] = 50,
    cursor: Annotated[
        str | None,
        WithJsonSchema({"type": "string"}),
        Query(description="`next_cursor` of the page before; leave out for the first page."),
    ] = None,
) -> ReportList:
    """Pages by cursor: a report created while a client pages is neither skipped nor repeated.
    Reports are kept `report_retention_days` (30 by default)."""
    after = None
    if cursor is not None:
        try:
            after = decode_cursor(cursor)
        except ValueError as error:
            raise ApiError(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "invalid_request",
                "cursor: not a cursor of GET /reports",
                {"errors": [{"location": "query.cursor", "message": str(error)}]},
            ) from error
    page = await reports.list_reports(
        session,
        limit=limit,
        status=None if status_filter is None else stored_status(status_filter),
        after=after,
    )
    return ReportList(
        reports=[ReportMetadata.of(report) for report in page.reports],
        next_cursor=None if page.next is None else encode_cursor(page.next),
    )


@router.delete(
    "/reports/{report_id}",
    operation_id="delete_report",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    response_description="Deleted, with everything stored for it.",
    responses=documented({**_NOT_FOUND, **_INVALID, **_UNAVAILABLE}),
    summary="Delete a report",
    dependencies=[Security(MANAGE_REPORTS)],
)
async def delete_report(report_id: ReportId, session: SessionDep) -> Response:
    """Removes the report, its rows and its CSV. A report still queued or being computed is
    cancelled by its deletion: its job stops at its next lease renewal (a few seconds) and
    writes nothing."""
    if not await reports.delete_report(session, report_id):
        raise _not_found(report_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


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
                **_NOT_COMPLETE,
                **_INVALID,
                **_UNAVAILABLE,
            }
        ),
    },
    summary="Download a complete report's CSV",
)
async def download_report_csv(
    report_id: ReportId,
    session: SessionDep,
    request: Request,
    principal: ReportReaderDep,
    if_none_match: IfNoneMatch = None,
) -> Response:
    report = await _existing(session, report_id)
    if report.status is ReportStatus.complete:
        answer = await _csv_answer(session, request, report, principal, if_none_match)
        if answer is not None:
            return answer
        report = await _existing_again(session, report)
    raise ApiError(
        status.HTTP_409_CONFLICT,
        "report_not_complete",
        f"report {report_id} is {wire_status(report.status).value}, not Complete",
        {"status": wire_status(report.status).value, "error": report.error},
    )


_INCIDENTS_CONTENT: Final = {
    "text/csv": {
        "schema": {"type": "string"},
        "example": "store_id,started_at,ended_at,minutes\n"
        "8419537941919820732,2023-01-24T10:44:30.000000Z,2023-01-24T12:00:00.000000Z,75.50\n",
    }
}
_DAILY_CONTENT: Final = {
    "text/csv": {
        "schema": {"type": "string"},
        "example": "store_id,date,uptime_hours,downtime_hours\n"
        "8419537941919820732,2023-01-24,10.74,1.26\n",
    }
}
StoreIdFilter = Annotated[
    str | None,
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": STORE_ID_MAX_CHARS,
            "pattern": STORE_ID_PATTERN,
        }
    ),
    Query(
        min_length=1,
        max_length=STORE_ID_MAX_CHARS,
        pattern=STORE_ID_PATTERN,
        description="Only this store's rows; 404 if the report has no such store.",
    ),
]
StoreId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=STORE_ID_MAX_CHARS,
        pattern=STORE_ID_PATTERN,
        description="A store of the report, as in its CSV.",
        examples=["8419537941919820732"],
    ),
]


@router.get(
    "/reports/{report_id}/incidents",
    operation_id="download_report_incidents_csv",
    response_class=Response,
    responses={
        200: {
            "description": "The report's incidents as CSV, as `store-monitor report --incidents` "
            "writes them: by store, then start.",
            "content": _INCIDENTS_CONTENT,
            "headers": _DETAIL_CSV_HEADERS,
        },
        **documented({**_NOT_FOUND_WITH_STORE, **_NOT_COMPLETE, **_INVALID, **_UNAVAILABLE}),
    },
    summary="Download a complete report's incidents",
)
async def download_report_incidents_csv(
    report_id: ReportId,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    principal: ReportReaderDep,
    store_id: StoreIdFilter = None,
) -> Response:
    report = _complete(await _existing(session, report_id))
    await _has_store(session, report, store_id, principal)
    return _csv_file(
        await reports.incidents_csv(
            sessionmaker, report.id, store_id=store_id, owner_id=principal.owner_id
        ),
        _detail_filename("incidents", report, store_id),
    )


@router.get(
    "/reports/{report_id}/daily",
    operation_id="download_report_daily_csv",
    response_class=Response,
    responses={
        200: {
            "description": "The report's daily figures as CSV, as `store-monitor report --daily` "
            "writes them: by store, then local date.",
            "content": _DAILY_CONTENT,
            "headers": _DETAIL_CSV_HEADERS,
        },
        **documented({**_NOT_FOUND_WITH_STORE, **_NOT_COMPLETE, **_INVALID, **_UNAVAILABLE}),
    },
    summary="Download a complete report's daily figures",
)
async def download_report_daily_csv(
    report_id: ReportId,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    principal: ReportReaderDep,
    store_id: StoreIdFilter = None,
) -> Response:
    report = _complete(await _existing(session, report_id))
    await _has_store(session, report, store_id, principal)
    return _csv_file(
        await reports.daily_csv(
            sessionmaker, report.id, store_id=store_id, owner_id=principal.owner_id
        ),
        _detail_filename("daily", report, store_id),
    )


@router.get(
    "/reports/{report_id}/stores/{store_id}",
    operation_id="get_report_store",
    response_model=StoreReport,
    response_description="The store's figures, its week day by day and its incidents.",
    responses=documented(
        {
            404: "No report has this id (`report_not_found`), or the report has no such store "
            "(`store_not_found`).",
            **_NOT_COMPLETE,
            **_INVALID,
            **_UNAVAILABLE,
        }
    ),
    summary="One store of a complete report",
)
async def get_report_store(
    report_id: ReportId, store_id: StoreId, session: SessionDep, principal: ReportReaderDep
) -> StoreReport:
    report = _complete(await _existing(session, report_id))
    # Another owner's store is answered as one not in the report: its existence is not told.
    details = await reports.store_details(session, report.id, store_id, owner_id=principal.owner_id)
    if details is None:
        raise _store_not_found(report, store_id)
    return store_report(report, details)


async def _has_store(
    session: SessionDep, report: Report, store_id: str | None, principal: Principal
) -> None:
    """Raises the 404 for a named store the report has not (or that is another owner's, whose
    existence is not told); an owner's store without incidents is there, with a header only."""
    if store_id is not None and not await reports.has_store(
        session, report.id, store_id, owner_id=principal.owner_id
    ):
        raise _store_not_found(report, store_id)


def _store_not_found(report: Report, store_id: str) -> ApiError:
    return ApiError(
        status.HTTP_404_NOT_FOUND,
        "store_not_found",
        f"report {report.id} has no store {store_id!r}",
        {"report_id": str(report.id), "store_id": store_id},
    )


def _detail_filename(kind: str, report: Report, store_id: str | None) -> str:
    """`daily-{report}.csv`, and `daily-{report}-{store}.csv` for one store's: two downloads
    never save to one name."""
    if store_id is None:
        return f"{kind}-{report.id}.csv"
    return f"{kind}-{report.id}-{filenames.name_part(store_id)}.csv"


def _complete(report: Report) -> Report:
    if report.status is not ReportStatus.complete:
        raise ApiError(
            status.HTTP_409_CONFLICT,
            "report_not_complete",
            f"report {report.id} is {wire_status(report.status).value}, not Complete",
            {"status": wire_status(report.status).value, "error": report.error},
        )
    return report


def _csv_file(body: bytes, filename: str) -> Response:
    # Whole, with its Content-Length: a cut download is detectable.
    return Response(
        body,
        media_type=_CSV_MEDIA_TYPE,
        headers={
            "Content-Disposition": filenames.attachment(filename),
            _STATUS_HEADER: WireReportStatus.Complete.value,
        },
    )


async def _existing(session: SessionDep, report_id: UUID) -> Report:
    report = await reports.get_report(session, report_id)
    if report is None:
        raise _not_found(report_id)
    return report


def _not_found(report_id: UUID) -> ApiError:
    return ApiError(
        status.HTTP_404_NOT_FOUND,
        "report_not_found",
        f"no report with id {report_id}",
        {"report_id": str(report_id)},
    )


async def _existing_again(session: SessionDep, report: Report) -> Report:
    """The report as it is now: complete a moment ago, it has been recomputing (or failed) since."""
    session.expunge(report)
    return await _existing(session, report.id)


async def _csv_answer(
    session: SessionDep,
    request: Request,
    report: Report,
    principal: Principal,
    if_none_match: str | None,
) -> Response | None:
    """The complete report's CSV, or a 304; None if it is no longer complete. An owner key gets
    the rows of the owner's stores only.

    Everything is read before the route returns, and the session with it: the body is sent
    without a database connection (see `reports.report_file`).
    """
    gzipped = downloads.select_gzip(request)
    if if_none_match is not None:
        # A revalidation reads the digest only, not the file.
        current = await reports.report_file(
            session, report.id, content=False, owner_id=principal.owner_id
        )
        if current is None:
            return None
        if downloads.not_modified(
            if_none_match, downloads.entity_tag(current.info, gzipped=gzipped)
        ):
            return downloads.not_modified_response(current.info, gzipped=gzipped)
    stored = await reports.report_file(
        session, report.id, content=True, owner_id=principal.owner_id
    )
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
