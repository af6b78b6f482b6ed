"""Wire schemas of the schedule routes: what clients send to create a schedule, and get back."""

from datetime import datetime
from typing import Final
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from store_monitor.api.wire import EXAMPLE_REPORT_ID, NextCursor, response_config
from store_monitor.schedules.cron import DEFAULT_TIMEZONE

EXAMPLE_SCHEDULE_ID: Final = "5f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f"
"""The schedule id the OpenAPI examples show."""


class CreateScheduleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cron: str = Field(
        max_length=200,
        description="A standard five-field cron expression (minute, hour, day of month, month, "
        "day of week; names such as `mon` allowed), evaluated in `timezone`. A local time "
        "skipped by a DST change fires at the end of the gap; one repeated fires once.",
        examples=["0 6 * * 1"],
    )
    timezone: str = Field(
        default=DEFAULT_TIMEZONE,
        max_length=64,
        description="The IANA time zone the expression is evaluated in.",
        examples=["America/New_York"],
    )


class ScheduleResponse(BaseModel):
    """A schedule: at each of its fire times one report is created, as `POST /trigger_report`
    without `as_of` would."""

    model_config = response_config(
        {
            "schedule_id": EXAMPLE_SCHEDULE_ID,
            "cron": "0 6 * * 1",
            "timezone": "America/New_York",
            "created_at": "2026-12-04T15:20:11.482113Z",
            "created_by": None,
            "next_fire_at": "2026-12-07T11:00:00Z",
            "next_fire_local": "2026-12-07T06:00:00-05:00",
            "last_fired_at": "2026-11-30T11:00:02.114527Z",
            "last_report_id": EXAMPLE_REPORT_ID,
        }
    )

    # Read from its row by `model_validate`.
    schedule_id: UUID = Field(validation_alias="id")
    cron: str = Field(description="As given, its fields separated by single spaces.")
    timezone: str
    created_at: datetime
    created_by: UUID | None = Field(
        description="The id of the API key that created it; null with authentication off."
    )
    next_fire_at: datetime = Field(
        validation_alias="next_due_at", description="The next fire time, UTC."
    )
    next_fire_local: datetime = Field(
        validation_alias="next_due_local",
        description="The same instant in `timezone`, with its UTC offset.",
    )
    last_fired_at: datetime | None = Field(
        description="When it last created a report (on the database's clock); null if never. "
        "A fire time missed while the service was down fires once when it is back."
    )
    last_report_id: UUID | None = Field(
        description="The report it last created; null if never, or once that report is deleted."
    )


class ScheduleList(BaseModel):
    """One page of `GET /schedules`."""

    model_config = response_config()

    schedules: list[ScheduleResponse] = Field(description="Newest first.")
    next_cursor: NextCursor = None
