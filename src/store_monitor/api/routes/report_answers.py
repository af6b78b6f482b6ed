"""How the report routes find a report and answer with it: the 404 and 409 errors, and the
CSVs (the stored file with its validators, or one made from rows)."""

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request, Response, status

from store_monitor import reports
from store_monitor.access import Principal
from store_monitor.api import filenames
from store_monitor.api.routes.report_openapi import (
    CSV_MEDIA_TYPE,
    STATUS_HEADER,
    IfNoneMatch,
    ReportId,
)
from store_monitor.db.models import Report, ReportStatus
from store_monitor.web import downloads
from store_monitor.web.auth import ReportReaderDep
from store_monitor.web.deps import SessionDep, StateDep
from store_monitor.web.errors import ApiError, not_found
from store_monitor.web.report_status import WireReportStatus, wire_status


def complete(report: Report) -> Report:
    if report.status is not ReportStatus.complete:
        raise not_complete(report)
    return report


def not_complete(report: Report) -> ApiError:
    shown = wire_status(report.status).value
    return ApiError(
        status.HTTP_409_CONFLICT,
        "report_not_complete",
        f"report {report.id} is {shown}, not Complete",
        {"status": shown, "error": report.error},
    )


def csv_file(body: bytes, filename: str) -> Response:
    # Whole, with its Content-Length: a cut download is detectable.
    return Response(
        body,
        media_type=CSV_MEDIA_TYPE,
        headers={
            "Content-Disposition": filenames.attachment(filename),
            STATUS_HEADER: WireReportStatus.Complete.value,
        },
    )


async def existing(session: SessionDep, report_id: UUID) -> Report:
    report = await reports.get_report(session, report_id)
    if report is None:
        raise report_not_found(report_id)
    return report


def report_not_found(report_id: UUID) -> ApiError:
    return not_found("report", f"no report with id {report_id}", report_id=str(report_id))


async def existing_again(session: SessionDep, report: Report) -> Report:
    """The report as it is now: complete a moment ago, it has been recomputing (or failed) since."""
    session.expunge(report)
    return await existing(session, report.id)


async def csv_or_unfinished(
    report_id: ReportId,
    session: SessionDep,
    request: Request,
    principal: ReportReaderDep,
    state: StateDep,
    if_none_match: IfNoneMatch = None,
) -> Response | Report:
    """The complete report's CSV (or a 304); else the report as it is now, not complete."""
    report = await existing(session, report_id)
    if report.status is ReportStatus.complete:
        answer = await csv_answer(session, request, state, report, principal, if_none_match)
        if answer is not None:
            return answer
        report = await existing_again(session, report)
    return report


CsvOrUnfinishedDep = Annotated[Response | Report, Depends(csv_or_unfinished)]
"""The report's CSV, for the routes that send it once the report is complete."""


async def csv_answer(
    session: SessionDep,
    request: Request,
    state: StateDep,
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
    return await downloads.file_response(
        stored.info,
        stored.gzip,
        gzipped=gzipped,
        inflated_files=state.inflated_files,
        media_type=CSV_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="report-{report.id}.csv"',
            STATUS_HEADER: WireReportStatus.Complete.value,
        },
    )


async def has_store(
    session: SessionDep, report: Report, store_id: str | None, principal: Principal
) -> None:
    """Raises the 404 for a named store the report has not (or that is another owner's, whose
    existence is not told); an owner's store without incidents is there, with a header only."""
    if store_id is not None and not await reports.has_store(
        session, report.id, store_id, owner_id=principal.owner_id
    ):
        raise store_not_found(report, store_id)


def store_not_found(report: Report, store_id: str) -> ApiError:
    return not_found(
        "store",
        f"report {report.id} has no store {store_id!r}",
        report_id=str(report.id),
        store_id=store_id,
    )


def detail_filename(kind: str, report: Report, store_id: str | None) -> str:
    """`daily-{report}.csv`, and `daily-{report}-{store}.csv` for one store's: two downloads
    never save to one name."""
    if store_id is None:
        return f"{kind}-{report.id}.csv"
    return f"{kind}-{report.id}-{filenames.name_part(store_id)}.csv"
