"""Probes: liveness (the process answers), readiness (database at the latest schema, queue up)."""

import logging

import sqlalchemy as sa
from fastapi import APIRouter, status

from store_monitor.api.schemas import Health, Readiness
from store_monitor.db.migrations import is_at_head
from store_monitor.web.deps import StateDep
from store_monitor.web.errors import ApiError, documented

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz", operation_id="healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    operation_id="readyz",
    response_model=Readiness,
    responses=documented(
        {503: "The database or the queue is unavailable, or the schema is old (`not_ready`)."}
    ),
    summary="Readiness: database and queue",
)
async def readyz(state: StateDep) -> Readiness:
    try:
        async with state.engine.connect() as connection:
            await connection.execute(sa.select(1))
            at_head = await is_at_head(connection)
    except Exception as error:
        log.warning("not ready: database: %s", error)
        raise _not_ready("database", f"the database cannot be reached: {error}") from error
    if not at_head:
        raise _not_ready("database", "the database schema is not at the latest migration")
    try:
        await state.queue.ping()
    except Exception as error:
        log.warning("not ready: queue: %s", error)
        raise _not_ready("queue", f"the job queue cannot be reached: {error}") from error
    return Readiness()


def _not_ready(component: str, message: str) -> ApiError:
    return ApiError(
        status.HTTP_503_SERVICE_UNAVAILABLE, "not_ready", message, {"component": component}
    )
