"""The dashboard's "Down now" page, and the JSON its script polls to keep it up to date.

The page's script polls `/ui/live.json` rather than `GET /live`: the API wants a bearer key,
which a signed-in browser does not hold; both answer from the same use case (`live.down_now`).
"""

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Final
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor import live, reports
from store_monitor.report_types import ReportStatus
from store_monitor.ui.context import ReaderPageDep
from store_monitor.ui.views import instant, store_path
from store_monitor.web.deps import SessionDep

SHOWN: Final = 200
"""Stores on the page at most, the longest down first."""

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class DownLine:
    store_id: str
    since_local: str
    since_utc: str
    duration: str
    url: str | None
    """The store's page in the latest complete report; None before any report."""


@dataclass(frozen=True, slots=True)
class LivePage:
    now: str
    """N, as the page says it: the data's latest instant the view is of."""
    total: int
    stores: list[DownLine]


@router.get("/ui/live", response_class=HTMLResponse)
async def live_page(page: ReaderPageDep, session: SessionDep) -> Response:
    view = await _view(session, page.request, page.visitor.owner_id)
    return page.render(
        "live.html",
        {
            "title": "Down now",
            "view": view,
            "shown": SHOWN,
            "json_url": page.path_for("live_json"),
        },
    )


@router.get("/ui/live.json")
async def live_json(page: ReaderPageDep, session: SessionDep) -> Response:
    view = await _view(session, page.request, page.visitor.owner_id)
    return page.send(JSONResponse(asdict(view)))


async def _view(session: AsyncSession, request: Request, owner_id: str | None) -> LivePage:
    found = await live.down_now(session, owner_id=owner_id, limit=SHOWN)
    latest = await reports.list_reports(session, limit=1, status=ReportStatus.complete)
    report_id = latest.rows[0].id if latest.rows else None
    return LivePage(
        now="no evaluation yet" if found.now is None else instant(found.now),
        total=found.total,
        stores=[_line(store, request, report_id) for store in found.stores],
    )


def _line(store: live.DownStore, request: Request, report_id: UUID | None) -> DownLine:
    url = None
    if report_id is not None:
        url = store_path(request, report_id, store.store_id)
    return DownLine(
        store_id=store.store_id,
        since_local=_local(store.since, store.timezone),
        since_utc=instant(store.since),
        duration=_duration(store.minutes),
        url=url,
    )


def _local(at: datetime, timezone: str) -> str:
    return at.astimezone(ZoneInfo(timezone)).strftime(f"%a %Y-%m-%d %H:%M %Z ({timezone})")


def _duration(minutes: float) -> str:
    hours, rest = divmod(round(minutes), 60)
    return f"{hours} h {rest:02d} min" if hours else f"{rest} min"
