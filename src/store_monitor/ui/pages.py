"""The dashboard's routes: the reports, one report's stores, one store; sign-in; CSV downloads.

Pages are rendered on the server from the same use cases as the JSON API. The only scripts are
this package's own files (no inline script: the CSP forbids it), which read their data from
`data-*` attributes and poll `status.json` for a report being computed.
"""

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
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

from store_monitor import access, reports
from store_monitor.access import Principal
from store_monitor.api import downloads
from store_monitor.api.deps import SessionDep, StateDep
from store_monitor.api.errors import error_response
from store_monitor.api.schemas import decode_cursor, encode_cursor
from store_monitor.db import report_views
from store_monitor.db.models import KeyScope, ReportStatus
from store_monitor.db.report_views import StoreSort
from store_monitor.settings import AuthMode
from store_monitor.sources import STORE_ID_MAX_CHARS, STORE_ID_PATTERN, TEXT_PATTERN
from store_monitor.ui import views
from store_monitor.ui.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    Session,
    Sessions,
    new_session,
    token_matches,
)

log = logging.getLogger(__name__)

STATIC_PATH: Final = "/ui/static"
_CSV: Final = "text/csv; charset=utf-8"
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

router = APIRouter(include_in_schema=False)


def static_files() -> StaticFiles:
    return StaticFiles(directory=_HERE / "static")


def install(app: FastAPI) -> None:
    """Add the dashboard to the app: its routes and its static files."""
    app.include_router(router)
    app.mount(STATIC_PATH, static_files(), name="ui-static")
    app.add_exception_handler(SignInRequired, _to_sign_in)


async def _to_sign_in(request: Request, error: Exception) -> Response:
    assert isinstance(error, SignInRequired)
    if "application/json" in request.headers.get("accept", ""):
        # The page's script: it says so rather than follow a redirect to a form.
        return error_response(
            status.HTTP_401_UNAUTHORIZED, "sign_in_required", "the dashboard session has ended"
        )
    target = request.url_for("sign_in_page").path + "?" + urlencode({"next": error.back_to})
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who is looking: their session (sent with the response when `new`), and the key they
    act with; None until they sign in (always ANYBODY with authentication off)."""

    session: Session
    new: bool
    principal: Principal | None

    @property
    def owner_id(self) -> str | None:
        return None if self.principal is None else self.principal.owner_id


class SignInRequired(Exception):
    """A page needs a signed-in key: answered with a redirect to the sign-in page."""

    def __init__(self, back_to: str) -> None:
        super().__init__("sign in first")
        self.back_to = back_to


def _sessions(state: StateDep) -> Sessions:
    return Sessions(state.session_secret)


SessionsDep = Annotated[Sessions, Depends(_sessions)]


async def _visitor(
    request: Request, state: StateDep, db: SessionDep, sessions: SessionsDep
) -> Visitor:
    found = sessions.read(request)
    session, new = (new_session(), True) if found is None else (found, False)
    if state.settings.auth_mode is AuthMode.off:
        return Visitor(session=session, new=new, principal=access.ANYBODY)
    if session.key_name is None:
        return Visitor(session=session, new=new, principal=None)
    try:
        principal = await access.verify_named(db, session.key_name, now=datetime.now(UTC))
    except access.KeyRejected as rejected:
        log.info("dashboard session of key %s ended: %s", session.key_name, rejected.reason.value)
        return Visitor(session=session.signed_out(), new=True, principal=None)
    return Visitor(session=session, new=new, principal=principal)


VisitorDep = Annotated[Visitor, Depends(_visitor)]


def _reader(request: Request, visitor: VisitorDep) -> Visitor:
    """A visitor who may read reports; others are sent to sign in first."""
    if visitor.principal is None:
        raise SignInRequired(
            request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
    return visitor


ReaderDep = Annotated[Visitor, Depends(_reader)]


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
            "owner_id": visitor.owner_id,
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
    visitor: ReaderDep,
    before: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    try:
        # The same opaque cursor as `GET /reports`.
        cursor = None if before is None else decode_cursor(before)
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
    rows = [
        views.report_line(report, request, narrowed=visitor.owner_id is not None)
        for report in page.reports
    ]
    older = None
    if page.next is not None:
        older = (
            request.url_for("reports_page").path
            + "?"
            + urlencode({"before": encode_cursor(page.next)})
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
    visitor: ReaderDep,
    csrf_form: Annotated[str | None, Form(alias=CSRF_FIELD)] = None,
    csrf_header: Annotated[str | None, Header(alias=CSRF_HEADER)] = None,
    accept: Annotated[str, Header()] = "",
) -> Response:
    """Start a report; answers JSON to the page's script, a redirect to a plain form post."""
    if not token_matches(None if visitor.new else visitor.session, csrf_header or csrf_form):
        return _expired(request, sessions, visitor)
    async with state.sessionmaker() as session:
        created = await reports.create_report(session, state.queue, as_of=None)
    line = views.report_line(created.report, request, narrowed=visitor.owner_id is not None)
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
    visitor: ReaderDep,
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
    line = views.report_line(report, request, narrowed=visitor.owner_id is not None)
    return _secured(request, sessions, visitor, JSONResponse(views.status_json(line)))


@router.get("/ui/reports/{report_id}", response_class=HTMLResponse)
async def report_page(
    request: Request,
    report_id: UUID,
    session: SessionDep,
    sessions: SessionsDep,
    visitor: ReaderDep,
    sort: StoreSort = StoreSort.downtime_last_week,
    order: Annotated[str | None, Query(pattern="^(asc|desc)$")] = None,
    q: Annotated[str, Query(max_length=_MAX_FILTER_CHARS, pattern=TEXT_PATTERN)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    report = await reports.get_report(session, report_id)
    if report is None:
        return _not_found(request, sessions, visitor, f"There is no report {report_id}.")
    line = views.report_line(report, request, narrowed=visitor.owner_id is not None)
    context: dict[str, Any] = {"title": f"Report of {line.now_text}", "report": line}
    if report.status is ReportStatus.complete:
        descending = (order or views.default_order(sort)) == "desc"
        contains = q.strip() or None
        found = await report_views.store_page(
            session,
            report.id,
            sort=sort,
            descending=descending,
            contains=contains,
            offset=(page - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
            owner_id=visitor.owner_id,
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
    visitor: ReaderDep,
) -> Response:
    report = await reports.get_report(session, report_id)
    if report is None or report.status is not ReportStatus.complete:
        return _not_found(request, sessions, visitor, f"There is no complete report {report_id}.")
    details = await reports.store_details(session, report.id, store_id, owner_id=visitor.owner_id)
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
            "report": views.report_line(report, request, narrowed=visitor.owner_id is not None),
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
    visitor: ReaderDep,
    store_id: Annotated[
        str | None,
        Query(min_length=1, max_length=STORE_ID_MAX_CHARS, pattern=STORE_ID_PATTERN),
    ] = None,
) -> Response:
    """The API's CSV downloads, for the dashboard's session."""
    report = await reports.get_report(session, report_id)
    if report is None or report.status is not ReportStatus.complete:
        return _not_found(request, sessions, visitor, f"There is no complete report {report_id}.")
    if store_id is not None and kind is views.FileKind.report:
        # The report's own CSV is every store's: a store's line is on its page.
        return _not_found(request, sessions, visitor, "The report's CSV is not kept per store.")
    suffix = "" if store_id is None else "-" + views.file_safe(store_id)
    disposition = {
        "Content-Disposition": f'attachment; filename="{kind.value}-{report.id}{suffix}.csv"'
    }
    response: Response
    if kind is views.FileKind.report:
        # The stored file, as `GET /reports/{id}/csv` sends it (an owner's made from the rows).
        stored = await reports.report_file(
            session, report.id, content=True, owner_id=visitor.owner_id
        )
        if stored is None or stored.gzip is None:
            return _not_found(request, sessions, visitor, "The report is no longer complete.")
        response = downloads.file_response(
            stored.info,
            stored.gzip,
            gzipped=downloads.select_gzip(request),
            media_type=_CSV,
            headers=disposition,
        )
    else:
        maker, owner_id = state.sessionmaker, visitor.owner_id
        body = await (
            reports.incidents_csv(maker, report.id, store_id=store_id, owner_id=owner_id)
            if kind is views.FileKind.incidents
            else reports.daily_csv(maker, report.id, store_id=store_id, owner_id=owner_id)
        )
        response = Response(body, media_type=_CSV, headers=disposition)
    return _secured(request, sessions, visitor, response)


def _local_path(target: str | None) -> str | None:
    """`target` if it is a path of this site (never another host: `//x` or `/\\x` is one)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return None


@router.get("/ui/sign-in", response_class=HTMLResponse)
async def sign_in_page(
    request: Request,
    state: StateDep,
    sessions: SessionsDep,
    visitor: VisitorDep,
    next: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    if state.settings.auth_mode is AuthMode.off or visitor.principal is not None:
        target = _local_path(next) or request.url_for("reports_page").path
        return _secured(
            request, sessions, visitor, RedirectResponse(target, status.HTTP_303_SEE_OTHER)
        )
    return _page(
        request,
        sessions,
        visitor,
        "sign_in.html",
        {"title": "Sign in", "next": _local_path(next) or "", "problem": None},
    )


@router.post("/ui/sign-in", response_class=HTMLResponse)
async def sign_in(
    request: Request,
    state: StateDep,
    db: SessionDep,
    sessions: SessionsDep,
    visitor: VisitorDep,
    key: Annotated[str, Form(max_length=300)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
    csrf_form: Annotated[str | None, Form(alias=CSRF_FIELD)] = None,
) -> Response:
    """Check the key and open a session for it; the key itself is kept nowhere."""
    if state.settings.auth_mode is AuthMode.off:
        return RedirectResponse(request.url_for("reports_page").path, status.HTTP_303_SEE_OTHER)
    if not token_matches(None if visitor.new else visitor.session, csrf_form):
        return _expired(request, sessions, visitor)
    address = request.client.host if request.client else "unknown"

    def again(problem: str, status_code: int) -> Response:
        context = {"title": "Sign in", "next": _local_path(next) or "", "problem": problem}
        return _page(request, sessions, visitor, "sign_in.html", context, status_code=status_code)

    wait = state.limiter.retry_after(address)
    if wait is not None:
        return again(f"Too many failed attempts: try again in {wait} s.", 429)
    assert state.settings.secret_key is not None  # checked at start-up
    server_key = state.settings.secret_key.get_secret_value().encode()
    try:
        principal = await access.verify(
            db, server_key=server_key, secret=key.strip(), now=datetime.now(UTC)
        )
    except access.KeyRejected as rejected:
        state.limiter.failed(address)
        log.warning(
            "dashboard sign-in failed: API key %s",
            rejected.reason.value,
            extra={"key_name": rejected.key_name, "key_prefix": rejected.key_prefix},
        )
        return again("That key is not valid: unknown, revoked or expired.", 401)
    if not principal.allows(frozenset({KeyScope.reports}), owners=True) or not principal.key_name:
        return again("That key may not read reports (it needs the reports scope or an owner).", 403)
    signed_in = Visitor(
        session=visitor.session.signed_in(principal.key_name), new=True, principal=principal
    )
    target = _local_path(next) or request.url_for("reports_page").path
    return _secured(
        request, sessions, signed_in, RedirectResponse(target, status.HTTP_303_SEE_OTHER)
    )


@router.post("/ui/sign-out", response_class=RedirectResponse)
async def sign_out(
    request: Request,
    sessions: SessionsDep,
    visitor: VisitorDep,
    csrf_form: Annotated[str | None, Form(alias=CSRF_FIELD)] = None,
) -> Response:
    if not token_matches(None if visitor.new else visitor.session, csrf_form):
        return _expired(request, sessions, visitor)
    signed_out = Visitor(session=visitor.session.signed_out(), new=True, principal=None)
    return _secured(
        request,
        sessions,
        signed_out,
        RedirectResponse(request.url_for("sign_in_page").path, status.HTTP_303_SEE_OTHER),
    )


def _expired(request: Request, sessions: Sessions, visitor: Visitor) -> Response:
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
