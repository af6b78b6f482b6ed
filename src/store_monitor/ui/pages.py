"""The dashboard's report pages: the list of reports (and starting one), a report's stores,
one store.

Pages are rendered on the server from the same use cases as the JSON API. The only scripts are
this package's own files (no inline script: the CSP forbids it), which read their data from
`data-*` attributes and poll `status.json` for a report being computed.
"""

import math
from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import APIRouter, Header, Query, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from store_monitor import report_types, reports, trends
from store_monitor.report_types import ReportStatus, StoreSort
from store_monitor.sources import TEXT_PATTERN
from store_monitor.ui import store_view, trend_view, views
from store_monitor.ui.context import PageRoute, ReaderFormPageDep, ReaderPageDep
from store_monitor.web.cursors import encode_cursor
from store_monitor.web.deps import SessionDep, StateDep
from store_monitor.web.rate_limits import counted_as, too_many_triggers

PAGE_SIZE: Final = 50
"""Stores per page of a report."""
REPORTS_SHOWN: Final = 20
"""Reports per page of the list."""
_MAX_FILTER_CHARS: Final = 255

HISTORY_SHOWN: Final = 12
"""Reports in a store page's history chart."""

router = APIRouter(include_in_schema=False, route_class=PageRoute)


@router.get("/", response_class=HTMLResponse)
async def reports_page(
    page: ReaderPageDep,
    session: SessionDep,
    before: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    # The same opaque cursor as `GET /reports`.
    cursor = page.position(before, list_path="/reports")
    found = await reports.list_reports(session, limit=REPORTS_SHOWN, after=cursor)
    rows = [
        views.report_line(report, page.request, narrowed=page.narrowed) for report in found.rows
    ]
    older = None if found.next is None else page.older("reports_page", encode_cursor(found.next))
    return page.render(
        "reports.html",
        {"title": "Reports", "reports": rows, "older": older, "paged": cursor is not None},
    )


@router.post("/ui/reports", response_class=RedirectResponse)
async def trigger_from_dashboard(
    page: ReaderFormPageDep,
    state: StateDep,
    session: SessionDep,
    accept: Annotated[str, Header()] = "",
) -> Response:
    """Start a report; answers JSON to the page's script, a redirect to a plain form post."""
    wait = await state.trigger_limiter.retry_after(
        counted_as(page.request, page.principal.key_hash)
    )
    if wait is not None:
        if "application/json" in accept:
            raise too_many_triggers(wait)
        return page.over_rate("Too many reports", "This key started too many reports.", wait)
    created = await reports.create_report(session, state.queue, as_of=None)
    line = views.report_line(created.report, page.request, narrowed=page.narrowed)
    if "application/json" in accept:
        return page.send(
            JSONResponse(views.status_json(line), status_code=status.HTTP_202_ACCEPTED)
        )
    return page.redirect_to("reports_page")


@router.get("/ui/reports/{report_id}/status.json")
async def report_status(report_id: UUID, page: ReaderPageDep, session: SessionDep) -> Response:
    """What the list shows of one report, for the script that keeps the list live."""
    report = await reports.get_report(session, report_id)
    if report is None:
        return page.send(
            JSONResponse({"error": "no such report"}, status_code=status.HTTP_404_NOT_FOUND)
        )
    line = views.report_line(report, page.request, narrowed=page.narrowed)
    return page.send(JSONResponse(views.status_json(line)))


@router.get("/ui/reports/{report_id}", response_class=HTMLResponse)
async def report_page(
    report_id: UUID,
    page: ReaderPageDep,
    session: SessionDep,
    sort: StoreSort = StoreSort.downtime_last_week,
    order: Annotated[str | None, Query(pattern="^(asc|desc)$")] = None,
    q: Annotated[str, Query(max_length=_MAX_FILTER_CHARS, pattern=TEXT_PATTERN)] = "",
    page_number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
) -> Response:
    request = page.request
    report = await reports.get_report(session, report_id)
    if report is None:
        return page.not_found(f"There is no report {report_id}.")
    line = views.report_line(report, request, narrowed=page.narrowed)
    context: dict[str, Any] = {"title": f"Report of {line.now_text}", "report": line}
    if report.status is ReportStatus.complete:
        descending = (order or views.default_order(sort)) == "desc"
        contains = q.strip() or None
        found = await report_types.store_page(
            session,
            report.id,
            sort=sort,
            descending=descending,
            contains=contains,
            offset=(page_number - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
            owner_id=page.visitor.owner_id,
        )
        table = views.StoreTable(
            base=request.url_for("report_page", report_id=report.id).path,
            sort=sort,
            descending=descending,
            filter=contains or "",
            page=page_number,
            pages=max(1, math.ceil(found.total / PAGE_SIZE)),
            total=found.total,
        )
        owner_id = page.visitor.owner_id
        summary = await trends.report_summary(session, report, owner_id=owner_id)
        changes = await trends.downtime_changes(
            session, report, [store.store_id for store in found.stores]
        )
        context |= {
            "table": table,
            "bars_after": views.BARS_AFTER,
            "change_after": views.CHANGE_AFTER,
            "summary": trend_view.summary_view(summary, request, report.id),
            "stores": [
                views.store_line(
                    store,
                    request,
                    report.id,
                    changes.change_hours(store.store_id, store.downtime_last_week),
                )
                for store in found.stores
            ],
            "downloads": views.downloads(request, report.id),
        }
    return page.render("report.html", context)


# `path`: the server decodes `%2F` before routing, so an id holding `/` spans segments.
@router.get("/ui/reports/{report_id}/stores/{store_id:path}", response_class=HTMLResponse)
async def store_page(
    report_id: UUID,
    store_id: Annotated[str, views.STORE_ID_PATH],
    page: ReaderPageDep,
    session: SessionDep,
) -> Response:
    report = await reports.get_report(session, report_id)
    if report is None or report.status is not ReportStatus.complete:
        return page.not_found(f"There is no complete report {report_id}.")
    owner_id = page.visitor.owner_id
    details = await reports.store_details(session, report.id, store_id, owner_id=owner_id)
    if details is None:
        return page.not_found(f"The report of {views.instant(report.now)} has no store {store_id}.")
    history = await trends.store_history(session, store_id, owner_id=owner_id, limit=HISTORY_SHOWN)
    return page.render(
        "store.html",
        {
            "title": f"Store {store_id}",
            "report": views.report_line(report, page.request, narrowed=page.narrowed),
            "store": store_view.store_view(details, report),
            "history": trend_view.history_view(history),
            "downloads": views.downloads(page.request, report.id, store_id=store_id),
        },
    )
