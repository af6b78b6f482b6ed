"""The dashboard's Schedules page: the schedules with their next fire time in their zone and in
UTC, a form to create one and a button to delete each; the same CSRF token as every form, and
the same scope as the API's schedule routes (an owner's key may not)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import APIRouter, Form, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from store_monitor.schedules import rows
from store_monitor.schedules.cron import DEFAULT_TIMEZONE, ScheduleError, parse_schedule
from store_monitor.settings import Settings
from store_monitor.ui.context import Page, ReaderFormPageDep, ReaderPageDep
from store_monitor.ui.views import instant
from store_monitor.web.auth import MANAGE_REPORTS
from store_monitor.web.cursors import encode_cursor
from store_monitor.web.deps import SessionDep, SettingsDep

SCHEDULES_SHOWN: Final = 50
"""Schedules per page."""

router = APIRouter(include_in_schema=False)


def _refused(page: Page) -> Response | None:
    """A 403 page unless the visitor's key may manage schedules (the API's rule)."""
    principal = page.visitor.principal
    if principal is not None and principal.allows(
        MANAGE_REPORTS.scopes, owners=MANAGE_REPORTS.owners
    ):
        return None
    return page.error(
        status.HTTP_403_FORBIDDEN,
        "Not allowed",
        "Schedules are managed with a key of the reports or admin scope; an owner's key may not.",
    )


@dataclass(frozen=True, slots=True)
class ScheduleLine:
    id: UUID
    cron: str
    timezone: str
    next_local: str
    next_utc: str
    last_fired: str
    last_report_url: str | None
    delete_url: str


def schedule_line(row: rows.ReportSchedule, request: Request) -> ScheduleLine:
    local = row.next_due_local
    return ScheduleLine(
        id=row.id,
        cron=row.cron,
        timezone=row.timezone,
        next_local=f"{local:%Y-%m-%d %H:%M} {local.tzname()}",
        next_utc=instant(row.next_due_at),
        last_fired=_never(row.last_fired_at),
        last_report_url=None
        if row.last_report_id is None
        else request.url_for("report_page", report_id=row.last_report_id).path,
        delete_url=request.url_for("delete_schedule_from_dashboard", schedule_id=row.id).path,
    )


def _never(value: datetime | None) -> str:
    return "never" if value is None else instant(value)


@router.get("/ui/schedules", response_class=HTMLResponse)
async def schedules_page(
    page: ReaderPageDep,
    session: SessionDep,
    settings: SettingsDep,
    before: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    if (refused := _refused(page)) is not None:
        return refused
    return await _render(page, session, settings, before=before)


async def _render(
    page: Page,
    session: SessionDep,
    settings: Settings,
    *,
    before: str | None = None,
    form: dict[str, str] | None = None,
    error: str | None = None,
) -> Response:
    cursor = page.position(before, list_path="/schedules")
    found = await rows.list_schedules(session, limit=SCHEDULES_SHOWN, after=cursor)
    older = None
    if found.next is not None:
        older = page.older("schedules_page", encode_cursor(found.next))
    context: dict[str, Any] = {
        "title": "Schedules",
        "min_interval_minutes": settings.schedule_min_interval_minutes,
        "schedules": [schedule_line(row, page.request) for row in found.rows],
        "older": older,
        "form": form or {"cron": "", "timezone": DEFAULT_TIMEZONE},
        "error": error,
    }
    code = status.HTTP_200_OK if error is None else status.HTTP_422_UNPROCESSABLE_CONTENT
    return page.render("schedules.html", context, status_code=code)


@router.post("/ui/schedules", response_class=RedirectResponse)
async def create_schedule_from_dashboard(
    page: ReaderFormPageDep,
    session: SessionDep,
    settings: SettingsDep,
    cron: Annotated[str, Form(max_length=200)] = "",
    timezone: Annotated[str, Form(max_length=64)] = DEFAULT_TIMEZONE,
) -> Response:
    if (refused := _refused(page)) is not None:
        return refused
    try:
        schedule = parse_schedule(
            cron, timezone.strip() or DEFAULT_TIMEZONE, min_interval=settings.schedule_min_interval
        )
        await rows.create_schedule(
            session,
            schedule,
            key_name=page.principal.key_name,
            max_per_key=settings.schedule_max_per_key,
        )
    except ScheduleError as error:
        field = {"cron": "Cron expression", "timezone": "Time zone"}[error.field]
        problem = f"{field}: {error.message}"
    except rows.QuotaReached as error:
        problem = str(error)
    else:
        return page.redirect_to("schedules_page")
    form = {"cron": cron, "timezone": timezone}
    return await _render(page, session, settings, form=form, error=problem)


@router.post("/ui/schedules/{schedule_id}/delete", response_class=RedirectResponse)
async def delete_schedule_from_dashboard(
    schedule_id: UUID, page: ReaderFormPageDep, session: SessionDep
) -> Response:
    if (refused := _refused(page)) is not None:
        return refused
    if not await rows.delete_schedule(session, schedule_id):
        return page.not_found(f"There is no schedule {schedule_id}.")
    return page.redirect_to("schedules_page")
