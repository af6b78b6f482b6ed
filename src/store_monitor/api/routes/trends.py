"""Reads across reports: a complete report's summary beside the previous comparable report, and
a store's figures in each complete report. Both read stored report rows; nothing is recomputed."""

from typing import Annotated, Final

from fastapi import APIRouter, Query, Security

from store_monitor import trends

# The report reads' own look-up, so that these answer an unknown or unfinished report alike.
from store_monitor.api.routes.report_answers import complete, existing
from store_monitor.api.routes.report_openapi import (
    NOT_COMPLETE,
    NOT_FOUND,
    UNAVAILABLE,
    AnyReportStoreId,
    ReportId,
)
from store_monitor.api.trend_schemas import ReportSummary, StoreHistory, StoreHistoryEntry
from store_monitor.web.auth import READ_REPORTS, ReportReaderDep
from store_monitor.web.deps import SessionDep
from store_monitor.web.errors import documented, not_found

# The reports scope, or an owner key, whose reads are narrowed to the owner's stores.
router = APIRouter(tags=["reports"], dependencies=[Security(READ_REPORTS)])

_INVALID: Final = {422: "A parameter is malformed or out of range (`invalid_request`)."}


@router.get(
    "/reports/{report_id}/summary",
    operation_id="get_report_summary",
    response_model=ReportSummary,
    response_description="The week's totals, the worst stores, and the change since the "
    "previous comparable report.",
    responses=documented(
        {
            **NOT_FOUND,
            **NOT_COMPLETE,
            **_INVALID,
            **UNAVAILABLE,
        }
    ),
    summary="A complete report's summary",
)
async def get_report_summary(
    report_id: ReportId, session: SessionDep, principal: ReportReaderDep
) -> ReportSummary:
    """Business hours lost in the last week over the stores the key may see (an owner key: the
    owner's) and the share of business time that is, stores with any downtime, incidents, the
    five worst stores; and the same of the previous comparable report (the latest complete
    report whose `now` is at least 6 days earlier) with the change."""
    report = complete(await existing(session, report_id))
    summary = await trends.report_summary(session, report, owner_id=principal.owner_id)
    return ReportSummary.of(report, summary)


@router.get(
    "/stores/{store_id:path}/history",
    operation_id="get_store_history",
    response_model=StoreHistory,
    response_description="The store's figures in each complete report, newest first.",
    responses=documented(
        {
            404: "No complete report has the store, or it is not the owner key's "
            "(`store_not_found`).",
            **_INVALID,
            **UNAVAILABLE,
        }
    ),
    summary="A store's figures across reports",
)
async def get_store_history(
    store_id: AnyReportStoreId,
    session: SessionDep,
    principal: ReportReaderDep,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=trends.HISTORY_MAX,
            description=f"Reports at most, the latest; 1 to {trends.HISTORY_MAX}.",
        ),
    ] = 12,
) -> StoreHistory:
    """The store's line of each complete report (uptime and downtime of the last hour, day and
    week) and its incident counts, by the report's `now`, newest first. Reports are kept
    `report_retention_days` (30 by default): the history reaches as far back."""
    entries = await trends.store_history(
        session, store_id, owner_id=principal.owner_id, limit=limit
    )
    if not entries:
        # Another owner's store is answered as one never reported: its existence is not told.
        raise not_found("store", f"no complete report has store {store_id!r}", store_id=store_id)
    return StoreHistory(
        store_id=store_id, reports=[StoreHistoryEntry.of(entry) for entry in entries]
    )
