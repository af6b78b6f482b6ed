"""The event bodies: their shape, the CSV's formats, round trips and the OpenAPI schema."""

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import polars as pl
import pytest
from fastapi import FastAPI
from pydantic import TypeAdapter, ValidationError

from store_monitor.formats import incidents_csv_bytes
from store_monitor.frames import INCIDENTS
from store_monitor.webhooks.events import (
    EVENT_MODELS,
    TEST_EVENT_TYPE,
    EventType,
    IncidentClosedData,
    IncidentClosedEvent,
    IncidentOpenedData,
    IncidentOpenedEvent,
    ReportCompletedData,
    ReportCompletedEvent,
    ReportFailedData,
    ReportFailedEvent,
    WebhookEvent,
    event_body,
    event_id,
    incident_closed_events,
    parse_event,
)

CREATED = datetime(2023, 1, 25, 18, 0, 0, 120000, tzinfo=UTC)
REPORT_ID = uuid.UUID("8a3f2b1c-0d4e-4f5a-9b6c-7d8e9f0a1b2c")


def _events() -> list[
    IncidentOpenedEvent | IncidentClosedEvent | ReportCompletedEvent | ReportFailedEvent
]:
    start = datetime(2023, 1, 24, 10, 44, 30, tzinfo=UTC)
    return [
        IncidentOpenedEvent(
            timestamp=CREATED, data=IncidentOpenedData(store_id="s1", started_at=start)
        ),
        IncidentClosedEvent(
            timestamp=CREATED,
            data=IncidentClosedData(
                store_id="s1",
                started_at=start,
                ended_at=start + timedelta(minutes=90),
                minutes=90.0,
            ),
        ),
        ReportCompletedEvent(
            timestamp=CREATED,
            data=ReportCompletedData(
                report_id=REPORT_ID,
                now=CREATED,
                row_count=14092,
                incident_count=31877,
                unknown_timezones=0,
                ignored_polls=2,
                csv_url=f"https://monitor.example.com/get_report/{REPORT_ID}",
            ),
        ),
        ReportFailedEvent(
            timestamp=CREATED,
            data=ReportFailedData(report_id=REPORT_ID, now=None, error="timed out after 600 s"),
        ),
    ]


def test_every_body_is_type_timestamp_and_data() -> None:
    bodies = [json.loads(event_body(event)) for event in _events()]

    assert [body["type"] for body in bodies] == [
        "incident.opened",
        "incident.closed",
        "report.completed",
        "report.failed",
    ]
    for body in bodies:
        assert set(body) == {"type", "timestamp", "data"}
        assert body["timestamp"] == "2023-01-25T18:00:00.120000Z"
    assert bodies[0]["data"] == {"store_id": "s1", "started_at": "2023-01-24T10:44:30.000000Z"}
    assert bodies[2]["data"]["report_id"] == str(REPORT_ID)
    assert bodies[2]["data"]["now"] == "2023-01-25T18:00:00.120000Z"
    assert bodies[3]["data"] == {
        "report_id": str(REPORT_ID),
        "now": None,
        "error": "timed out after 600 s",
    }


def test_closed_incidents_carry_exactly_what_the_incidents_csv_writes() -> None:
    incidents = pl.DataFrame(
        {
            "store_id": ["a", "a", "b", "c"],
            "started_at": [
                datetime(2023, 1, 24, 10, 44, 30, 123456, tzinfo=UTC),
                datetime(2023, 1, 24, 23, 59, 59, 999999, tzinfo=UTC),
                datetime(2023, 1, 20, 0, 0, tzinfo=UTC),
                datetime(2023, 1, 22, 5, 0, 0, 500000, tzinfo=UTC),
            ],
            "ended_at": [
                datetime(2023, 1, 24, 10, 45, 0, 723456, tzinfo=UTC),
                datetime(2023, 1, 25, 0, 0, 0, 0, tzinfo=UTC),
                datetime(2023, 1, 21, 0, 0, tzinfo=UTC),
                datetime(2023, 1, 22, 17, 21, 0, 500000, tzinfo=UTC),
            ],
            "minutes": [0.51, 0.0, 1440.0, 741.0],
        },
        schema=INCIDENTS,
    )
    csv_rows = list(csv.DictReader(io.StringIO(incidents_csv_bytes(incidents).decode())))

    events = incident_closed_events(incidents, timestamp=CREATED)

    bodies = [json.loads(event_body(event))["data"] for event in events]
    assert [row["store_id"] for row in csv_rows] == [body["store_id"] for body in bodies]
    for row, body in zip(csv_rows, bodies, strict=True):
        assert body["started_at"] == row["started_at"]
        assert body["ended_at"] == row["ended_at"]
        assert body["minutes"] == float(row["minutes"])


def test_instants_need_a_zone_and_are_written_in_utc() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        IncidentOpenedData(store_id="s", started_at=datetime(2023, 1, 1, 12, 0))
    india = timezone(timedelta(hours=5, minutes=30))

    data = IncidentOpenedData(store_id="s", started_at=datetime(2023, 1, 1, 17, 30, tzinfo=india))

    assert json.loads(data.model_dump_json())["started_at"] == "2023-01-01T12:00:00.000000Z"


def test_bodies_parse_back_into_their_models() -> None:
    for event in _events():
        assert parse_event(event_body(event)) == event
    with pytest.raises(ValidationError):
        parse_event(b'{"type": "store.deleted", "timestamp": "2023-01-01T00:00:00Z", "data": {}}')


def test_an_events_webhook_id_is_stable_for_its_row() -> None:
    key = uuid.uuid4()

    assert event_id(key) == event_id(uuid.UUID(str(key)))
    assert event_id(key) == f"evt_{key.hex}"
    assert event_id(key) != event_id(uuid.uuid4())


def test_the_schema_names_each_event_and_discriminates_by_type() -> None:
    schema = TypeAdapter(WebhookEvent).json_schema(mode="serialization")

    mapping = schema["discriminator"]["mapping"]
    # The four a subscription asks for, and the test `POST /webhooks/{id}/test` sends.
    assert set(mapping) == {event_type.value for event_type in EventType} | {TEST_EVENT_TYPE}
    assert {model.__name__ for model in EVENT_MODELS.values()} | {"WebhookTestEvent"} == {
        reference.rsplit("/", 1)[-1] for reference in mapping.values()
    }
    closed = schema["$defs"]["IncidentClosedData"]["properties"]
    assert closed["started_at"]["type"] == "string"
    assert closed["started_at"]["format"] == "date-time"
    assert closed["minutes"]["type"] == "number"
    assert schema["$defs"]["IncidentClosedEvent"]["description"]


def test_the_models_document_the_payloads_as_openapi_webhooks() -> None:
    app = FastAPI()
    for event_type, model in EVENT_MODELS.items():

        async def receive(body: model) -> None:  # type: ignore[valid-type]
            """A receiver's endpoint: documented only."""

        app.webhooks.post(event_type.value, operation_id=event_type.value)(receive)

    spec = app.openapi()

    assert spec["openapi"].startswith("3.1")
    assert set(spec["webhooks"]) == {event_type.value for event_type in EventType}
    schemas = spec["components"]["schemas"]
    # One schema per model, named as a generated client would name it (no -Input/-Output pairs).
    assert {name for name in schemas if "Event" in name or "Data" in name} == {
        f"{model.__name__.removesuffix('Event')}{suffix}"
        for model in EVENT_MODELS.values()
        for suffix in ("Event", "Data")
    }
    for event_type, model in EVENT_MODELS.items():
        body = spec["webhooks"][event_type.value]["post"]["requestBody"]["content"]
        assert body["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{model.__name__}"
        }
        schema = schemas[model.__name__]
        assert schema["required"] == ["type", "timestamp", "data"]
        assert schema["description"].splitlines()[0].endswith(".")
        [example] = schema["examples"]
        assert parse_event(json.dumps(example)) == model.model_validate(example)
        assert json.loads(event_body(model.model_validate(example))) == example
