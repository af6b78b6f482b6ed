"""`GET /metrics`: the API process's Prometheus exposition, left out of the OpenAPI document."""

from fastapi import APIRouter, Response

from store_monitor.api.deps import StateDep
from store_monitor.api.observability import CONTENT_TYPE

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(state: StateDep) -> Response:
    await state.metrics.refresh(state.sessionmaker, state.queue)
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE)
