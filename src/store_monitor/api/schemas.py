"""Wire schemas of the API: what clients send and get, kept apart from the database models."""

import datetime as dt
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from store_monitor.api.wire import (
    EXAMPLE_FIGURES,
    EXAMPLE_NOW,
    EXAMPLE_REPORT_ID,
    NextCursor,
    response_config,
)
from store_monitor.db.models import Report, ReportStatus
from store_monitor.reports import StoreDetails
from store_monitor.sources import EARLIEST_POLL
from store_monitor.web.report_status import WireReportStatus, wire_status

# The same range as the polls': from EARLIEST_POLL to the clock plus the allowed skew (the
# route checks the latter: it moves with the clock, and the skew is a setting).
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


class TriggerReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: datetime | None = Field(
        default=None,
        description=(
            "End of the report's windows, an instant (ISO 8601; without a zone it is UTC), "
            "from 2000-01-01 to the current time plus the allowed clock skew (a day by "
            "default), as for polls. Default: the latest poll at the time the report runs."
        ),
        examples=["2023-01-25T18:00:00Z"],
    )

    @field_validator("as_of", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        # An ISO 8601 string, as the schema says: pydantic would also take a number of seconds.
        if isinstance(value, int | float):
            raise ValueError("as_of must be an ISO 8601 date and time, not a number")
        return value

    @field_validator("as_of")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            instant = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        except OverflowError:
            instant = None
        if instant is None or not EARLIEST_POLL <= instant < _LATEST:
            raise ValueError(
                f"as_of must be from {EARLIEST_POLL:%Y-%m-%d}, like the polls, "
                "to no later than the current time plus the allowed clock skew"
            )
        return instant


class TriggerReportResponse(BaseModel):
    model_config = response_config({"report_id": EXAMPLE_REPORT_ID, "status": "Pending"})

    report_id: UUID
    status: WireReportStatus


class ReportState(BaseModel):
    """`GET /get_report` while the report is not ready, or once it failed."""

    # `error` is always sent, null unless failed.
    model_config = response_config(
        {"report_id": EXAMPLE_REPORT_ID, "status": "Running", "error": None},
        {
            "report_id": EXAMPLE_REPORT_ID,
            "status": "Failed",
            "error": "timed out after 600 s (attempt 1)",
        },
    )

    report_id: UUID
    status: Literal[WireReportStatus.Running, WireReportStatus.Failed] = Field(
        description="`Running` while the report is queued or being computed."
    )
    error: str | None = Field(default=None, description="Why the report failed.")


class ReportMetadata(BaseModel):
    model_config = response_config(
        {
            "report_id": EXAMPLE_REPORT_ID,
            "status": "Complete",
            "created_at": "2023-01-25T18:00:00.120000Z",
            "started_at": "2023-01-25T18:00:00.180000Z",
            "finished_at": "2023-01-25T18:00:02.950000Z",
            "as_of": None,
            "now": EXAMPLE_NOW,
            "error": None,
            "row_count": 14092,
            "unknown_timezones": 0,
            "ignored_polls": 0,
            "incident_count": 31877,
            "attempts": 1,
            "shards_done": 1,
            "shards_total": 1,
        }
    )

    # Read from the report's row by `model_validate`.
    report_id: UUID = Field(validation_alias="id")
    status: WireReportStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    as_of: datetime | None = Field(description="The `as_of` asked for; null: the latest poll.")
    now: datetime | None = Field(description="The instant the report's windows end at.")
    error: str | None
    row_count: int | None
    unknown_timezones: int | None = Field(
        description="Stores whose time zone name is unknown (they use America/Chicago)."
    )
    ignored_polls: int | None = Field(description="Polls after `now`, left out.")
    incident_count: int | None = Field(
        description="The report's incidents, all stores together (see `/incidents`)."
    )
    attempts: int = Field(description="Attempts at the report's job (planning it, if sharded).")
    shards_done: int | None = Field(
        description="Shards complete; null until the report is planned (see `shards_total`)."
    )
    shards_total: int | None = Field(
        description="The parts the report is computed in, each a job of its own (a report of "
        "many stores is split); null until it is planned, or until complete when it is one "
        "job. `shards_done` / `shards_total` is the report's progress."
    )
    request_id: str | None = Field(
        description="`X-Request-ID` of the request that created the report; its logs carry it."
    )

    @field_validator("status", mode="before")
    @classmethod
    def _as_clients_see_it(cls, value: object) -> object:
        return wire_status(value) if isinstance(value, ReportStatus) else value


class ReportList(BaseModel):
    """One page of `GET /reports`."""

    model_config = response_config()

    reports: list[ReportMetadata] = Field(description="Newest first.")
    next_cursor: NextCursor = None


class IngestResponse(BaseModel):
    model_config = response_config(
        {"source": "polls", "rows_received": 1849837, "rows_added": 1849837, "stores": 14092}
    )

    source: Literal["polls", "business_hours", "timezones", "owners"]
    rows_received: int = Field(description="Data rows in the uploaded file.")
    rows_added: int = Field(
        description="Rows stored: polls not stored before; the hours or zones that now stand "
        "for the file's stores; the memberships that now stand for the file's owners."
    )
    stores: int = Field(description="Distinct stores in the file.")


class Health(BaseModel):
    model_config = response_config()

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    model_config = response_config()

    status: Literal["ready"] = "ready"
    database: Literal["ok"] = "ok"
    queue: Literal["ok"] = "ok"


class StoreFigures(BaseModel):
    """A store's line of a report (`*_last_hour` in minutes, the others in hours) and its
    incident counts."""

    model_config = response_config()

    uptime_last_hour: float = Field(description="Minutes.")
    uptime_last_day: float = Field(description="Hours.")
    uptime_last_week: float = Field(description="Hours.")
    downtime_last_hour: float = Field(description="Minutes.")
    downtime_last_day: float = Field(description="Hours.")
    downtime_last_week: float = Field(description="Hours.")
    incidents_last_day: int = Field(description="Incidents that overlap the last day.")
    incidents_last_week: int = Field(description="Incidents in the week.")


class StoreDay(BaseModel):
    date: dt.date = Field(description="A local calendar date of the store.")
    uptime_hours: float
    downtime_hours: float


class StoreIncident(BaseModel):
    started_at: datetime
    ended_at: datetime
    minutes: float = Field(description="`ended_at - started_at`, rounded to 2 decimals.")


class StoreReport(BaseModel):
    """`GET /reports/{report_id}/stores/{store_id}`: one store of a complete report."""

    model_config = response_config(
        {
            "report_id": EXAMPLE_REPORT_ID,
            "store_id": "8419537941919820732",
            "now": EXAMPLE_NOW,
            "timezone": "America/Denver",
            "figures": EXAMPLE_FIGURES,
            "daily": [{"date": "2023-01-18", "uptime_hours": 3.5, "downtime_hours": 0.0}],
            "incidents": [
                {
                    "started_at": "2023-01-25T09:44:30Z",
                    "ended_at": "2023-01-25T11:14:30Z",
                    "minutes": 90.0,
                }
            ],
        }
    )

    report_id: UUID
    store_id: str
    now: datetime | None = Field(description="The instant the report's windows end at.")
    timezone: str = Field(
        description="The zone of the store's local dates: its own, or America/Chicago when it "
        "has none or an unknown one."
    )
    figures: StoreFigures
    daily: list[StoreDay] = Field(description="Every local date the week touches, in order.")
    incidents: list[StoreIncident] = Field(description="In time order.")


def store_report(report: Report, details: StoreDetails) -> StoreReport:
    view = details.view
    figures = view.figures
    return StoreReport(
        report_id=report.id,
        store_id=figures.store_id,
        now=report.now,
        timezone=details.timezone,
        figures=StoreFigures.model_validate(figures, from_attributes=True),
        daily=[
            StoreDay(
                date=day.date, uptime_hours=day.uptime_hours, downtime_hours=day.downtime_hours
            )
            for day in figures.days
        ],
        incidents=[
            StoreIncident(
                started_at=incident.started_at, ended_at=incident.ended_at, minutes=incident.minutes
            )
            for incident in view.incidents
        ],
    )
