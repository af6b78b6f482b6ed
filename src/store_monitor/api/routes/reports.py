"""Report routes: trigger a report, poll it, read its metadata and its stores, download its
CSVs, list reports, delete one."""

from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Depends, Header, Query, Response, Security, status
from fastapi.responses import JSONResponse
from pydantic import WithJsonSchema

from store_monitor import reports
from store_monitor.api.routes.report_answers import (
    CsvOrUnfinishedDep,
    complete,
    csv_file,
    detail_filename,
    existing,
    has_store,
    not_complete,
    report_not_found,
    store_not_found,
)
from store_monitor.api.routes.report_openapi import (
    CSV_RESPONSES,
    DAILY_CONTENT,
    INCIDENTS_CONTENT,
    INVALID,
    NOT_COMPLETE,
    NOT_FOUND,
    POLL_RESPONSES,
    STATUS_HEADER,
    UNAVAILABLE,
    ReportId,
    StoreId,
    StoreIdFilter,
    detail_csv_responses,
)
from store_monitor.api.schemas import (
    ReportList,
    ReportMetadata,
    ReportState,
    StoreReport,
    TriggerReportRequest,
    TriggerReportResponse,
    store_report,
)
from store_monitor.api.small_body import MAX_BODY_BYTES, SmallBodyRoute
from store_monitor.api.trigger_rate import within_trigger_rate
from store_monitor.clock import latest_allowed_poll
from store_monitor.db.models import SHARED_IDEMPOTENCY_SCOPE, ReportStatus
from store_monitor.web.auth import MANAGE_REPORTS, READ_REPORTS, ReportReaderDep
from store_monitor.web.cursors import CursorQuery, cursor_position, encode_cursor
from store_monitor.web.deps import SessionDep, StateDep, statements_commit_alone
from store_monitor.web.errors import ApiError, documented, invalid_request
from store_monitor.web.report_status import WireReportStatus, stored_status, wire_status

MAX_PAGE: Final = 200
"""Reports per page of `GET /reports` at most."""


# Every report route needs the reports scope (or an owner key, whose downloads are narrowed).
router = APIRouter(
    tags=["reports"], route_class=SmallBodyRoute, dependencies=[Security(READ_REPORTS)]
)
# A trigger's rate is checked before its key: a refused one costs no database work.
trigger_router = APIRouter(
    tags=["reports"],
    route_class=SmallBodyRoute,
    dependencies=[Depends(within_trigger_rate), Security(READ_REPORTS)],
)
# The body is optional; a model default (not `None`) keeps its schema a plain object, which
# client generators turn into an optional argument they leave out of the request when unset.
NO_OPTIONS: Final = TriggerReportRequest()


@trigger_router.post(
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
                **INVALID,
                429: "This key (or address, with authentication off) triggered more reports "
                "than `STORE_MONITOR_TRIGGER_RATE` allows (`too_many_triggers`), or this "
                "address failed authentication too often (`too_many_failures`); see "
                "Retry-After.",
                503: "The database cannot be reached or is overloaded (`database_unavailable`). "
                "A job queue that cannot be reached is no error: the report waits, pending, "
                "and is queued when the queue is back.",
            }
        ),
    },
    summary="Start computing a report",
)
async def trigger_report(
    principal: ReportReaderDep,
    state: StateDep,
    session: SessionDep,
    response: Response,
    body: Annotated[TriggerReportRequest, Body()] = NO_OPTIONS,
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
    skew = state.settings.clock_skew_seconds
    if body.as_of is not None and body.as_of > latest_allowed_poll(skew):
        # The schema checks the lower bound; the upper one moves with the clock, as for polls.
        raise invalid_request(
            "body.as_of", "as_of must be no later than the current time plus the allowed skew"
        )
    try:
        created = await reports.create_report(
            session,
            state.queue,
            as_of=body.as_of,
            idempotency_key=idempotency_key,
            idempotency_scope=principal.key_id or SHARED_IDEMPOTENCY_SCOPE,
        )
    except reports.IdempotencyKeyReused as error:
        raise ApiError(
            status.HTTP_409_CONFLICT,
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a report with a different as_of",
            {"report_id": str(error.report.id)},
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
    responses=POLL_RESPONSES,
    summary="Poll a report; its CSV once complete",
)
async def get_report(found: CsvOrUnfinishedDep) -> Response:
    """`{"status": "Running"}` while queued or computing, the CSV once complete,
    `{"status": "Failed", "error": ...}` if it failed.

    Typed clients may rather poll `GET /reports/{report_id}` and download
    `GET /reports/{report_id}/csv`, whose bodies are one type each.
    """
    if isinstance(found, Response):
        return found
    if found.status is ReportStatus.failed:
        state = ReportState(report_id=found.id, status=WireReportStatus.Failed, error=found.error)
    else:
        # Pending or running: to a client polling for the CSV, both mean "not yet".
        state = ReportState(report_id=found.id, status=WireReportStatus.Running)
    return JSONResponse(state.model_dump(mode="json"), headers={STATUS_HEADER: state.status.value})


@router.get(
    "/reports/{report_id}",
    operation_id="get_report_metadata",
    response_model=ReportMetadata,
    response_description="The report's state, and its figures once complete.",
    responses=documented({**NOT_FOUND, **INVALID, **UNAVAILABLE}),
    summary="A report's state and figures",
)
@statements_commit_alone
async def get_report_metadata(report_id: ReportId, session: SessionDep) -> ReportMetadata:
    state = await reports.report_state(session, report_id)
    if state is None:
        raise report_not_found(report_id)
    return ReportMetadata.model_validate(state)


@router.get(
    "/reports",
    operation_id="list_reports",
    response_model=ReportList,
    response_description="A page of reports, newest first.",
    responses=documented(
        {
            422: "A parameter is out of range, or `cursor` is not one this API gave "
            "(`invalid_request`).",
            **UNAVAILABLE,
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
    cursor: CursorQuery = None,
) -> ReportList:
    """Pages by cursor: a report created while a client pages is neither skipped nor repeated.
    Reports are kept `report_retention_days` (30 by default)."""
    page = await reports.list_reports(
        session,
        limit=limit,
        status=None if status_filter is None else stored_status(status_filter),
        after=cursor_position(cursor, path="/reports"),
    )
    return ReportList(
        reports=[ReportMetadata.model_validate(report) for report in page.rows],
        next_cursor=None if page.next is None else encode_cursor(page.next),
    )


@router.delete(
    "/reports/{report_id}",
    operation_id="delete_report",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    response_description="Deleted, with everything stored for it.",
    responses=documented({**NOT_FOUND, **INVALID, **UNAVAILABLE}),
    summary="Delete a report",
    dependencies=[Security(MANAGE_REPORTS)],
)
async def delete_report(report_id: ReportId, session: SessionDep) -> Response:
    """Removes the report, its rows and its CSV. A report still queued or being computed is
    cancelled by its deletion: its job stops at its next lease renewal (a few seconds) and
    writes nothing."""
    if not await reports.delete_report(session, report_id):
        raise report_not_found(report_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/reports/{report_id}/csv",
    operation_id="download_report_csv",
    response_class=Response,
    responses=CSV_RESPONSES,
    summary="Download a complete report's CSV",
)
async def download_report_csv(found: CsvOrUnfinishedDep) -> Response:
    if isinstance(found, Response):
        return found
    raise not_complete(found)


def _add_detail_download(
    kind: reports.DetailCsv, *, what: str, order: str, content: dict[str, Any]
) -> None:
    """`GET /reports/{report_id}/{kind}`: one route per detail CSV, each with its own operation
    and documented content."""

    async def download(
        report_id: ReportId,
        session: SessionDep,
        principal: ReportReaderDep,
        store_id: StoreIdFilter = None,
    ) -> Response:
        report = complete(await existing(session, report_id))
        await has_store(session, report, store_id, principal)
        return csv_file(
            await reports.detail_csv(
                session, report.id, kind, store_id=store_id, owner_id=principal.owner_id
            ),
            detail_filename(kind.value, report, store_id),
        )

    router.add_api_route(
        f"/reports/{{report_id}}/{kind.value}",
        download,
        methods=["GET"],
        operation_id=f"download_report_{kind.value}_csv",
        response_class=Response,
        responses=detail_csv_responses(
            f"The report's {what} as CSV, as `store-monitor report --{kind.value}` writes them: "
            f"{order}.",
            content,
        ),
        summary=f"Download a complete report's {what}",
    )


_add_detail_download(
    reports.DetailCsv.incidents,
    what="incidents",
    order="by store, then start",
    content=INCIDENTS_CONTENT,
)
_add_detail_download(
    reports.DetailCsv.daily,
    what="daily figures",
    order="by store, then local date",
    content=DAILY_CONTENT,
)


@router.get(
    "/reports/{report_id}/stores/{store_id:path}",
    operation_id="get_report_store",
    response_model=StoreReport,
    response_description="The store's figures, its week day by day and its incidents.",
    responses=documented(
        {
            404: "No report has this id (`report_not_found`), or the report has no such store "
            "(`store_not_found`).",
            **NOT_COMPLETE,
            **INVALID,
            **UNAVAILABLE,
        }
    ),
    summary="One store of a complete report",
)
async def get_report_store(
    report_id: ReportId, store_id: StoreId, session: SessionDep, principal: ReportReaderDep
) -> StoreReport:
    report = complete(await existing(session, report_id))
    # Another owner's store is answered as one not in the report: its existence is not told.
    details = await reports.store_details(session, report.id, store_id, owner_id=principal.owner_id)
    if details is None:
        raise store_not_found(report, store_id)
    return store_report(report, details)
