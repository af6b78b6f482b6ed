"""The four events sent to webhooks, as the bodies receivers get: `{"type", "timestamp", "data"}`.

Instants are written as in the incidents CSV (`2023-01-24T10:44:30.000000Z`, UTC, microseconds)
and `minutes` is the CSV's value, so a receiver can compare closed incidents with a report's
incidents field by field. The models double as the OpenAPI 3.1 `webhooks` payload schemas.
"""

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

import polars as pl
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, TypeAdapter
from pydantic.json_schema import WithJsonSchema

_EXAMPLE_INSTANT = "2023-01-24T10:44:30.000000Z"


def format_instant(instant: datetime) -> str:
    """An aware instant as the CSVs write it: UTC, microseconds, `Z`."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _aware_utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("an instant needs a time zone (naive datetimes are ambiguous)")
    return instant.astimezone(UTC)


Instant = Annotated[
    datetime,
    AfterValidator(_aware_utc),
    PlainSerializer(format_instant, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": "UTC with microseconds, as in the CSVs.",
            "examples": [_EXAMPLE_INSTANT],
        }
    ),
]


class EventType(StrEnum):
    """What a subscription may ask for (`events`); every event's `type` is one of these."""

    incident_opened = "incident.opened"
    incident_closed = "incident.closed"
    report_completed = "report.completed"
    report_failed = "report.failed"


_MODEL_CONFIG = ConfigDict(frozen=True)


class IncidentOpenedData(BaseModel):
    model_config = _MODEL_CONFIG

    store_id: str
    started_at: Instant = Field(
        description="Where the stretch of business time the store is inactive begins; final."
    )


class IncidentClosedData(BaseModel):
    """One row of the incidents CSV."""

    model_config = _MODEL_CONFIG

    store_id: str
    started_at: Instant
    ended_at: Instant = Field(description="When the store was active again, or its hours ended.")
    minutes: float = Field(
        ge=0, description="`ended_at - started_at` in minutes, 2 decimals as in the CSV."
    )


class ReportCompletedData(BaseModel):
    model_config = _MODEL_CONFIG

    report_id: uuid.UUID
    now: Instant | None = Field(
        description="The instant the report's windows end at; null if there were no polls."
    )
    row_count: int = Field(ge=0, description="Stores in the report (rows of its CSV).")
    incident_count: int = Field(ge=0, description="The report's incidents, all stores together.")
    unknown_timezones: int = Field(
        ge=0, description="Stores whose time zone name is unknown (they use America/Chicago)."
    )
    ignored_polls: int = Field(ge=0, description="Polls after `now`, left out.")
    csv_url: str = Field(description="Where to download the report's CSV (with an API key).")


class ReportFailedData(BaseModel):
    model_config = _MODEL_CONFIG

    report_id: uuid.UUID
    now: Instant | None = Field(description="The instant the windows end at, if it was resolved.")
    error: str = Field(description="Why the report failed.")


def _event_config(example_data: dict[str, Any]) -> ConfigDict:
    """An event model's config: `type` required in its schema (it is always sent, though the
    model fills it in) and an example body."""

    def extra(schema: dict[str, Any]) -> None:
        schema["required"] = ["type", *schema.get("required", [])]
        example_type = schema["properties"]["type"]["const"]
        schema["examples"] = [
            {"type": example_type, "timestamp": "2023-01-25T18:00:00.120000Z", "data": example_data}
        ]

    return ConfigDict(frozen=True, json_schema_extra=extra)


_EXAMPLE_REPORT_ID = "8a3f2b1c-0d4e-4f5a-9b6c-7d8e9f0a1b2c"

_TIMESTAMP_DESCRIPTION = (
    "When the event was created (not when this attempt was sent): order events by it, as "
    "retries may deliver them out of order."
)


class IncidentOpenedEvent(BaseModel):
    """A store is down now.

    Sent once per incident, once no later poll can move its start.
    """

    model_config = _event_config(
        {"store_id": "8139926242460185114", "started_at": _EXAMPLE_INSTANT}
    )

    type: Literal[EventType.incident_opened] = EventType.incident_opened
    timestamp: Instant = Field(description=_TIMESTAMP_DESCRIPTION)
    data: IncidentOpenedData


class IncidentClosedEvent(BaseModel):
    """An incident ended.

    Sent once per incident, once no later poll can move its end; also for an incident that began
    and ended between two evaluations (never announced opened). The data is the incident's row of
    the incidents CSV.
    """

    model_config = _event_config(
        {
            "store_id": "8139926242460185114",
            "started_at": _EXAMPLE_INSTANT,
            "ended_at": "2023-01-24T11:44:30.000000Z",
            "minutes": 60.0,
        }
    )

    type: Literal[EventType.incident_closed] = EventType.incident_closed
    timestamp: Instant = Field(description=_TIMESTAMP_DESCRIPTION)
    data: IncidentClosedData


class ReportCompletedEvent(BaseModel):
    """A report is complete.

    Its CSV can be downloaded from `csv_url`.
    """

    model_config = _event_config(
        {
            "report_id": _EXAMPLE_REPORT_ID,
            "now": "2023-01-25T18:13:22.479220Z",
            "row_count": 14092,
            "incident_count": 31877,
            "unknown_timezones": 0,
            "ignored_polls": 0,
            "csv_url": f"https://monitor.example.com/get_report/{_EXAMPLE_REPORT_ID}",
        }
    )

    type: Literal[EventType.report_completed] = EventType.report_completed
    timestamp: Instant = Field(description=_TIMESTAMP_DESCRIPTION)
    data: ReportCompletedData


class ReportFailedEvent(BaseModel):
    """A report failed.

    It will not be retried; `error` says why.
    """

    model_config = _event_config(
        {
            "report_id": _EXAMPLE_REPORT_ID,
            # Not null here: FastAPI leaves nulls out of the examples in its OpenAPI document.
            "now": "2023-01-25T18:13:22.479220Z",
            "error": "timed out after 600 s (attempt 3)",
        }
    )

    type: Literal[EventType.report_failed] = EventType.report_failed
    timestamp: Instant = Field(description=_TIMESTAMP_DESCRIPTION)
    data: ReportFailedData


TEST_EVENT_TYPE: Final = "webhook.test"
"""The type of the event `POST /webhooks/{id}/test` sends: to that subscription only."""


class WebhookTestData(BaseModel):
    model_config = _MODEL_CONFIG

    webhook_id: uuid.UUID = Field(description="The subscription tested.")


class WebhookTestEvent(BaseModel):
    """A test, asked for with `POST /webhooks/{id}/test`.

    Sent to that subscription only, signed and retried as any other event.
    """

    model_config = _event_config({"webhook_id": _EXAMPLE_REPORT_ID})

    type: Literal["webhook.test"] = TEST_EVENT_TYPE
    timestamp: Instant = Field(description=_TIMESTAMP_DESCRIPTION)
    data: WebhookTestData


AnyEvent = (
    IncidentOpenedEvent
    | IncidentClosedEvent
    | ReportCompletedEvent
    | ReportFailedEvent
    | WebhookTestEvent
)
WebhookEvent = Annotated[AnyEvent, Field(discriminator="type")]
"""Any event body, told apart by `type` (for validation and schemas)."""

EVENT_MODELS: dict[EventType, type[AnyEvent]] = {
    EventType.incident_opened: IncidentOpenedEvent,
    EventType.incident_closed: IncidentClosedEvent,
    EventType.report_completed: ReportCompletedEvent,
    EventType.report_failed: ReportFailedEvent,
}
"""Each type's body model, e.g. for the OpenAPI `webhooks` section (one entry per type)."""

_EVENT_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(WebhookEvent)


def event_body(event: AnyEvent) -> bytes:
    """The JSON bytes sent (and signed) for an event: compact, UTF-8."""
    return event.model_dump_json().encode()


def parse_event(body: bytes | str) -> AnyEvent:
    """An event body back as its model (e.g. an outbox row's body, or in a receiver's test)."""
    return _EVENT_ADAPTER.validate_json(body)


def event_id(key: uuid.UUID) -> str:
    """The `webhook-id` of the event stored under `key`: the same on every attempt, so
    receivers can drop duplicates."""
    return f"evt_{key.hex}"


def incident_closed_events(
    incidents: pl.DataFrame, *, timestamp: datetime
) -> list[IncidentClosedEvent]:
    """One `incident.closed` per row of an incidents frame (schema `INCIDENTS`, as the engine
    returns it), so the events carry exactly what the incidents CSV would write."""
    return [
        IncidentClosedEvent(
            timestamp=timestamp,
            data=IncidentClosedData(
                store_id=row["store_id"],
                started_at=row["started_at"],
                ended_at=row["ended_at"],
                minutes=row["minutes"],
            ),
        )
        for row in incidents.iter_rows(named=True)
    ]
