"""`GET /metrics`: the API process's Prometheus exposition, left out of the OpenAPI document."""

from fastapi import APIRouter, Response, Security

from store_monitor.web.auth import METRICS
from store_monitor.web.deps import SessionDep, StateDep
from store_monitor.web.observability import CONTENT_TYPE

# A scraper's key needs the metrics scope only (admin keys may scrape too).
router = APIRouter(include_in_schema=False, dependencies=[Security(METRICS)])


@router.get("/metrics")
async def metrics(state: StateDep, session: SessionDep) -> Response:
    await state.metrics.refresh(session, state.queue)
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE)
