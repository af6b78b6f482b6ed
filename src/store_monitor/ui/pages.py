"""The dashboard's routes: the reports, one report's stores, one store; sign-in; CSV downloads.

Pages are rendered on the server from the same use cases as the JSON API. The only scripts are
this package's own files (no inline script: the CSP forbids it), which read their data from
`data-*` attributes and poll `status.json` for a report being computed.
"""

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Form, Header, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from starlette.responses import StreamingResponse

from store_monitor import reports
from store_monitor.api.deps import SessionDep, StateDep
from store_monitor.db.models import Report, ReportStatus
from store_monitor.db.report_views import StoreSort
from store_monitor.ui import views
from store_monitor.ui.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    Session,
    Sessions,
    new_session,
    token_matches,
)

STATIC_PATH: Final = "/ui/static"
UPLOT_VERSION: Final = "1.6.32"
"""The vendored uPlot (see static/vendor/README.md)."""
ASSET_VERSION: Final = version("store-monitor")
"""In the static files' URLs: a browser's cached copy is not used after an update."""
PAGE_SIZE: Final = 50
"""Stores per page of a report."""
REPORTS_SHOWN: Final = 20
"""Reports per page of the list."""
_HERE: Final = Path(__file__).resolve().parent
_MAX_FILTER_CHARS: Final = 255
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
"""The pages' policy: this host's files only, no inline script, never in a frame."""

templates = Jinja2Templates(directory=_HERE / "templates")


@pass_context
def _path_for(context: dict[str, Any], name: str, /, **params: Any) -> str:
    """The path of a route (behind a proxy's prefix too): links stay on the page's own origin."""
    request: Request = context["request"]
    return request.url_for(name, **params).path


templates.env.globals["path_for"] = _path_for
templates.env.filters.update(figure=views.figure, instant=views.instant, seconds=views.seconds_text)

router = APIRouter(include_in_schema=False)


def static_files() -> StaticFiles:
    return StaticFiles(directory=_HERE / "static")


def install(app: FastAPI) -> None:
    """Add the dashboard to the app: its routes and its static files."""
    app.include_router(router)
    app.mount(STATIC_PATH, static_files(), name="ui-static")


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who is looking: their session (new ones are sent with the response)."""

    session: Session
    new: bool


def _sessions(state: StateDep) -> Sessions:
    return Sessions(state.session_secret)


SessionsDep = Annotated[Sessions, Depends(_sessions)]


def _visitor(request: Request, sessions: SessionsDep) -> Visitor:
    found = sessions.read(request)
    if found is None:
        return Visitor(session=new_session(), new=True)
    return Visitor(session=found, new=False)


VisitorDep = Annotated[Visitor, Depends(_visitor)]


def _page(
    request: Request,
    sessions: Sessions,
    visitor: Visitor,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = status.HTTP_200_OK,
) -> Response:
    response = templates.TemplateResponse(
        request,
        template,
        {
            "csrf_token": visitor.session.csrf,
            "csrf_field": CSRF_FIELD,
            "asset_version": ASSET_VERSION,
            "uplot_version": UPLOT_VERSION,
            "signed_in": visitor.session.key_name is not None,
            "key_name": visitor.session.key_name,
            **context,
        },
        status_code=status_code,
    )
    return _secured(request, sessions, visitor, response)


def _secured(
    request: Request, sessions: Sessions, visitor: Visitor, response: Response
) -> Response:
    if visitor.new:
        sessions.write(response, visitor.session, secure=request.url.scheme == "https")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    # Pages show one person's stores: no shared cache keeps them.
    response.headers["Cache-Control"] = "no-store"
    return response


def _not_found(request: Request, sessions: Sessions, visitor: Visitor, message: str) -> Response:
    return _page(
        request,
        sessions,
        visitor,
        "error.html",
        {"title": "Not found", "message": message},
        status_code=status.HTTP_404_NOT_FOUND,
    )


@router.get("/", response_class=HTMLResponse)
async def reports_page(
    request: Request,
    session: SessionDep,
    sessions: SessionsDep,
    visitor: VisitorDep,
    before: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    try:
        cursor = views.parse_cursor(before)
    except ValueError as error:
        return _page(
            request,
            sessions,
            visitor,
            "error.html",
            {"title": "Bad page position", "message": str(error)},
            status_code=status.HTTP_400_BAD_REQUEST,
        )
    page = await reports.list_reports(session, limit=REPORTS_SHOWN, after=cursor)
    rows = [views.report_line(report, request) for report in page.reports]
    older = None
    if page.next is not None:
        older = (
            request.url_for("reports_page").path
            + "?"
            + urlencode({"before": views.cursor_text(page.next)})
        )
    return _page(
        request,
        sessions,
        visitor,
        "reports.html",
        {"title": "Reports", "reports": rows, "older": older, "paged": cursor is not None},
    )


@router.post("/ui/reports", response_class=RedirectResponse)
async def trigger_from_dashboard(
    request: Request,
    state: StateDep,
    sessions: SessionsDep,
    visitor: VisitorDep,
    csrf_form: Annotated[str | None, Form(alias=CSRF_FIELD)] = None,
    csrf_header: Annotated[str | None, Header(alias=CSRF_HEADER)] = None,
    accept: Annotated[str, Header()] = "",
) -> Response:
    """Start a report; answers JSON to the page's script, a redirect to a plain form post."""
    if not token_matches(None if visitor.new else visitor.session, csrf_header or csrf_form):
        return _page(
            request,
            sessions,
            visitor,
            "error.html",
            {
                "title": "Form expired",
                "message": "This form was not sent from the dashboard's own page, or the page "
                "was open too long. Reload it and try again.",
            },
            status_code=status.HTTP_403_FORBIDDEN,
        )
    try:
        created = await reports.create_report(
            state.sessionmaker, state.queue.enqueue_report, as_of=None
        )
    except reports.NotEnqueued as error:
        return _page(
            request,
            sessions,
            visitor,
            "error.html",
            {"title": "Report not started", "message": error.reason},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    line = views.report_line(created.report, request)
    if "application/json" in accept:
        return _secured(
            request,
            sessions,
            visitor,
            JSONResponse(views.status_json(line), status_code=status.HTTP_202_ACCEPTED),
        )
    return _secured(
        request,
        sessions,
        visitor,
        RedirectResponse(request.url_for("reports_page").path, status.HTTP_303_SEE_OTHER),
    )


@router.get("/ui/reports/{report_id}/status.json")
async def report_status(
    request: Request,
    report_id: UUID,
    session: SessionDep,
    sessions: SessionsDep,
    visitor: VisitorDep,
) -> Response:
    """What the list shows of one report, for the script that keeps the list live."""
    report = await reports.get_report(session, report_id)
    if report is None:
        return _secured(
            request,
            sessions,
            visitor,
            JSONResponse({"error": "no such report"}, status_code=status.HTTP_404_NOT_FOUND),
        )
    line = views.report_line(report, request)
    return _secured(request, sessions, visitor, JSONResponse(views.status_json(line)))


@router.get("/ui/reports/{report_id}", response_class=HTMLResponse)
async def report_page(
    request: Request,
    report_id: UUID,
    session: SessionDep,
    sessions: SessionsDep,
    visitor: VisitorDep,
    sort: StoreSort = StoreSort.downtime_last_week,
    order: Annotated[str | None, Query(pattern="^(asc|desc)$")] = None,
    q: Annotated[str, Query(max_length=_MAX_FILTER_CHARS)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    report = await reports.get_report(session, report_id)
    if report is None:
        return _not_found(request, sessions, visitor, f"There is no report {report_id}.")
    line = views.report_line(report, request)
    context: dict[str, Any] = {"title": f"Report of {line.now_text}", "report": line}
    if report.status is ReportStatus.complete:
        descending = (order or views.default_order(sort)) == "desc"
        contains = q.strip() or None
        found = await reports.report_stores(
            session,
            report.id,
            sort=sort,
            descending=descending,
            contains=contains,
            offset=(page - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
        )
        table = views.StoreTable(
            base=request.url_for("report_page", report_id=report.id).path,
            sort=sort,
            descending=descending,
            filter=contains or "",
            page=page,
            pages=max(1, math.ceil(found.total / PAGE_SIZE)),
            total=found.total,
        )
        context |= {
            "table": table,
            "bars_after": views.BARS_AFTER,
            "stores": [views.store_line(store, request, report.id) for store in found.stores],
            "downloads": views.downloads(request, report.id),
        }
    return _page(request, sessions, visitor, "report.html", context)


@router.get("/ui/reports/{report_id}/stores/{store_id}", response_class=HTMLResponse)
async def store_page(
    request: Request,
    report_id: UUID,
    store_id: Annotated[str, views.STORE_ID_PATH],
    session: SessionDep,
    sessions: SessionsDep,
    visitor: VisitorDep,
) -> Response:
    report = await reports.get_report(session, report_id)
    if report is None or report.status is not ReportStatus.complete:
        return _not_found(request, sessions, visitor, f"There is no complete report {report_id}.")
    details = await reports.store_details(session, report.id, store_id)
    if details is None:
        return _not_found(
            request,
            sessions,
            visitor,
            f"The report of {views.instant(report.now)} has no store {store_id}.",
        )
    store = views.store_view(details, report)
    return _page(
        request,
        sessions,
        visitor,
        "store.html",
        {
            "title": f"Store {store_id}",
            "report": views.report_line(report, request),
            "store": store,
            "downloads": views.downloads(request, report.id, store_id=store_id),
        },
    )


@router.get("/ui/reports/{report_id}/files/{kind}.csv")
async def download(
    request: Request,
    report_id: UUID,
    kind: views.FileKind,
    session: SessionDep,
    state: StateDep,
    sessions: SessionsDep,
    visitor: VisitorDep,
    store_id: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
) -> Response:
    """The API's CSV downloads, for the dashboard's session."""
    report = await reports.get_report(session, report_id)
    if report is None or report.status is not ReportStatus.complete:
        return _not_found(request, sessions, visitor, f"There is no complete report {report_id}.")
    if store_id is not None and kind is views.FileKind.report:
        # The report's own CSV is every store's: a store's line is on its page.
        return _not_found(request, sessions, visitor, "The report's CSV is not kept per store.")
    chunks = _file(state, report, kind, store_id)
    suffix = "" if store_id is None else "-" + views.file_safe(store_id)
    response = StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{kind.value}-{report.id}{suffix}.csv"'
        },
    )
    return _secured(request, sessions, visitor, response)


def _file(
    state: StateDep, report: Report, kind: views.FileKind, store_id: str | None
) -> AsyncIterator[bytes]:
    if kind is views.FileKind.incidents:
        return reports.incidents_csv(state.sessionmaker, report.id, store_id=store_id)
    if kind is views.FileKind.daily:
        return reports.daily_csv(state.sessionmaker, report.id, store_id=store_id)
    return reports.report_csv(state.sessionmaker, report.id)
