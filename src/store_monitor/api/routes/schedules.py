"""Schedule routes: create a schedule of reports, list them, read one, delete one.

Scoped as deleting reports is (a `reports` or `admin` key): a schedule creates reports of every
store for as long as it lives, which an owner key, narrowed to its own stores, may not set up.
"""

from typing import Annotated, Final
from uuid import UUID

from fastapi import APIRouter, Path, Query, Response, Security, status

from store_monitor.access import Principal
from store_monitor.api.routes.report_openapi import UNAVAILABLE
from store_monitor.api.schedule_schemas import (
    EXAMPLE_SCHEDULE_ID,
    CreateScheduleRequest,
    ScheduleList,
    ScheduleResponse,
)
from store_monitor.api.small_body import MAX_BODY_BYTES, SmallBodyRoute
from store_monitor.schedules import rows
from store_monitor.schedules.cron import ScheduleError, parse_schedule
from store_monitor.web.auth import MANAGE_REPORTS
from store_monitor.web.cursors import CursorQuery, cursor_position, encode_cursor
from store_monitor.web.deps import SessionDep, SettingsDep
from store_monitor.web.errors import ApiError, documented, invalid_request, not_found

MAX_PAGE: Final = 200
"""Schedules per page of `GET /schedules` at most."""

router = APIRouter(
    tags=["schedules"], route_class=SmallBodyRoute, dependencies=[Security(MANAGE_REPORTS)]
)
ScheduleId = Annotated[
    UUID,
    Path(description="The id `POST /schedules` returned.", examples=[EXAMPLE_SCHEDULE_ID]),
]
NOT_FOUND: Final = {404: "No schedule has this id (`schedule_not_found`)."}
INVALID: Final = {
    422: "The request is malformed (`invalid_request`), e.g. an id that is not a UUID."
}
SchedulerDep = Annotated[Principal, Security(MANAGE_REPORTS)]


@router.post(
    "/schedules",
    operation_id="create_schedule",
    status_code=status.HTTP_201_CREATED,
    response_model=ScheduleResponse,
    response_description="Created; `Location` is its URL.",
    responses={
        201: {
            "headers": {
                "Location": {
                    "description": "The schedule's URL, `/schedules/{schedule_id}`.",
                    "schema": {"type": "string"},
                }
            }
        },
        **documented(
            {
                400: "The body cannot be read as JSON text (`bad_request`).",
                409: "The key has as many schedules as it may (`too_many_schedules`).",
                413: f"The body is over {MAX_BODY_BYTES} bytes (`payload_too_large`).",
                422: "The body is malformed, or `cron` or `timezone` cannot be used, or the "
                "schedule would fire more often than the service allows (`invalid_request`; the "
                "error's `location` names the field: `body.cron`, `body.timezone`).",
                **UNAVAILABLE,
            }
        ),
    },
    summary="Create a report schedule",
)
async def create_schedule(
    body: CreateScheduleRequest,
    session: SessionDep,
    settings: SettingsDep,
    principal: SchedulerDep,
    response: Response,
) -> ScheduleResponse:
    """From its first fire time on, each fire time creates one report, as `POST /trigger_report`
    without `as_of` would (with any number of workers and API processes). Fire times must be
    `schedule_min_interval_minutes` apart (60 by default), and a key may have
    `schedule_max_per_key` schedules (25)."""
    try:
        schedule = parse_schedule(
            body.cron, body.timezone, min_interval=settings.schedule_min_interval
        )
    except ScheduleError as error:
        raise invalid_request(f"body.{error.field}", error.message) from error
    row = await rows.create_schedule(
        session, schedule, key_name=principal.key_name, max_per_key=settings.schedule_max_per_key
    )
    response.headers["Location"] = f"/schedules/{row.id}"
    return ScheduleResponse.model_validate(row)


@router.get(
    "/schedules",
    operation_id="list_schedules",
    response_model=ScheduleList,
    response_description="A page of schedules, newest first.",
    responses=documented(
        {
            422: "A parameter is out of range, or `cursor` is not one this API gave "
            "(`invalid_request`).",
            **UNAVAILABLE,
        }
    ),
    summary="List report schedules, newest first",
)
async def list_schedules(
    session: SessionDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE, description=f"Schedules per page, at most {MAX_PAGE}.")
    ] = 50,
    cursor: CursorQuery = None,
) -> ScheduleList:
    page = await rows.list_schedules(
        session, limit=limit, after=cursor_position(cursor, path="/schedules")
    )
    return ScheduleList(
        schedules=[ScheduleResponse.model_validate(row) for row in page.rows],
        next_cursor=None if page.next is None else encode_cursor(page.next),
    )


@router.get(
    "/schedules/{schedule_id}",
    operation_id="get_schedule",
    response_model=ScheduleResponse,
    response_description="The schedule, its next fire time and the report it last created.",
    responses=documented({**NOT_FOUND, **INVALID, **UNAVAILABLE}),
    summary="A report schedule",
)
async def get_schedule(schedule_id: ScheduleId, session: SessionDep) -> ScheduleResponse:
    row = await rows.get_schedule(session, schedule_id)
    if row is None:
        raise _not_found(schedule_id)
    return ScheduleResponse.model_validate(row)


@router.delete(
    "/schedules/{schedule_id}",
    operation_id="delete_schedule",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    response_description="Deleted: it fires no more. The reports it created stay.",
    responses=documented({**NOT_FOUND, **INVALID, **UNAVAILABLE}),
    summary="Delete a report schedule",
)
async def delete_schedule(schedule_id: ScheduleId, session: SessionDep) -> Response:
    if not await rows.delete_schedule(session, schedule_id):
        raise _not_found(schedule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _not_found(schedule_id: UUID) -> ApiError:
    message = f"no schedule has the id {schedule_id}"
    return not_found("schedule", message, schedule_id=str(schedule_id))
