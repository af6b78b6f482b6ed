"""`GET /live`: the stores down now, as the latest live evaluation left them."""

from datetime import datetime
from typing import Annotated, Final

from fastapi import APIRouter, Query, Security
from pydantic import BaseModel, Field

from store_monitor import live
from store_monitor.api.routes.report_openapi import UNAVAILABLE, LiveStoreIdFilter
from store_monitor.api.wire import response_config
from store_monitor.web.auth import READ_REPORTS, ReportReaderDep
from store_monitor.web.deps import SessionDep
from store_monitor.web.errors import documented

MAX_PAGE: Final = 500
"""Stores per page of `GET /live` at most."""

router = APIRouter(tags=["live"], dependencies=[Security(READ_REPORTS)])


class DownStore(BaseModel):
    model_config = response_config()

    store_id: str
    since: datetime = Field(
        description="Where its ongoing incident began: inactive in business hours since then."
    )
    minutes: float = Field(ge=0, description="`now - since` in minutes, 2 decimals.")
    latest_poll_at: datetime = Field(description="The store's own latest poll.")


class LiveView(BaseModel):
    """The stores down now, longest first."""

    now: datetime | None = Field(
        description="N, the latest poll of all stores as of the latest completed evaluation; "
        "null before any. It equals `latest_poll_at` once evaluation has caught up."
    )
    latest_poll_at: datetime | None = Field(
        description="The latest poll of all stores stored now (null without polls)."
    )
    total: int = Field(ge=0, description="Stores down now (that this key may see), all pages.")
    offset: int = Field(ge=0)
    limit: int = Field(ge=1)
    stores: list[DownStore] = Field(description="Longest down first, then by store id.")


@router.get(
    "/live",
    operation_id="get_live",
    response_model=LiveView,
    response_description="The stores down now, longest first.",
    responses=documented({422: "A parameter is out of range (`invalid_request`).", **UNAVAILABLE}),
    summary="Stores down now",
)
async def get_live(
    session: SessionDep,
    principal: ReportReaderDep,
    store_id: LiveStoreIdFilter = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Stores to skip.")] = 0,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE, description=f"Stores per page, at most {MAX_PAGE}.")
    ] = 100,
) -> LiveView:
    """A store is down now when N is in its business hours and it is inactive at N (see the
    contract's "Live" section). An owner key sees its own stores only; `store_id` narrows the
    list to one store (empty when it is not down, or not the owner's)."""
    view = await live.down_now(
        session, owner_id=principal.owner_id, store_id=store_id, offset=offset, limit=limit
    )
    return LiveView(
        now=view.now,
        latest_poll_at=view.latest_poll_at,
        total=view.total,
        offset=offset,
        limit=limit,
        stores=[DownStore.model_validate(store) for store in view.stores],
    )
