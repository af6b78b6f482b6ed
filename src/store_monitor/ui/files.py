"""The dashboard's CSV downloads: the API's files, for the dashboard's session."""

from typing import Annotated, Final
from uuid import UUID

from fastapi import APIRouter, Query, Response

from store_monitor import reports
from store_monitor.report_types import ReportStatus
from store_monitor.sources import STORE_ID_RULES
from store_monitor.ui import views
from store_monitor.ui.context import PageRoute, ReaderPageDep
from store_monitor.web import downloads
from store_monitor.web.deps import SessionDep, StateDep

_CSV: Final = "text/csv; charset=utf-8"

router = APIRouter(include_in_schema=False, route_class=PageRoute)


@router.get("/ui/reports/{report_id}/files/{kind}.csv")
async def download(
    report_id: UUID,
    kind: views.FileKind,
    page: ReaderPageDep,
    session: SessionDep,
    state: StateDep,
    store_id: Annotated[str | None, Query(**STORE_ID_RULES)] = None,
) -> Response:
    report = await reports.get_report(session, report_id)
    if report is None or report.status is not ReportStatus.complete:
        return page.not_found(f"There is no complete report {report_id}.")
    if store_id is not None and kind is views.FileKind.report:
        # The report's own CSV is every store's: a store's line is on its page.
        return page.not_found("The report's CSV is not kept per store.")
    suffix = "" if store_id is None else "-" + views.file_safe(store_id)
    disposition = {
        "Content-Disposition": f'attachment; filename="{kind.value}-{report.id}{suffix}.csv"'
    }
    owner_id = page.visitor.owner_id
    response: Response
    if kind is views.FileKind.report:
        # The stored file, as `GET /reports/{id}/csv` sends it (an owner's made from the rows).
        stored = await reports.report_file(session, report.id, content=True, owner_id=owner_id)
        if stored is None or stored.gzip is None:
            return page.not_found("The report is no longer complete.")
        response = await downloads.file_response(
            stored.info,
            stored.gzip,
            gzipped=downloads.select_gzip(page.request),
            inflated_files=state.inflated_files,
            media_type=_CSV,
            headers=disposition,
        )
    else:
        detail = reports.DetailCsv(kind.value)
        body = await reports.detail_csv(
            session, report.id, detail, store_id=store_id, owner_id=owner_id
        )
        response = Response(body, media_type=_CSV, headers=disposition)
    return page.send(response)
