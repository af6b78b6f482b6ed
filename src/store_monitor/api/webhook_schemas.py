"""The wire schemas of the webhook routes: subscribing, listing, testing, delivery attempts."""

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from store_monitor.api.wire import NextCursor, response_config
from store_monitor.sources import STORE_ID_RULES
from store_monitor.webhook_subscriptions import DEFAULT_KEEP_PREVIOUS
from store_monitor.webhooks.events import EventType, event_id
from store_monitor.webhooks.targets import MAX_URL_LENGTH

MAX_STORE_IDS: Final = 100
"""So that a body of as many store ids, at their longest, is within the 64 KiB body limit."""

WireStoreId = Annotated[str, StringConstraints(**STORE_ID_RULES)]


class CreateWebhookRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"url": "https://hooks.example.com/store-monitor", "events": ["incident.opened"]}
            ]
        },
    )

    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="Where to POST events: a public `https` URL (private addresses and plain "
        "`http` only with `STORE_MONITOR_WEBHOOK_PRIVATE_TARGETS=true`).",
    )
    events: list[EventType] | None = Field(
        default=None, min_length=1, description="The event types to send; leave out for all."
    )
    store_ids: list[WireStoreId] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_STORE_IDS,
        description="Only these stores' incident events; leave out for every store the key "
        "may see. Report events are sent whatever this says.",
    )


class UpdateWebhookRequest(BaseModel):
    """Only the fields given change (a JSON merge patch)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"events": ["incident.opened", "incident.closed"]}]},
    )

    url: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="A new URL, with the same rules as when subscribing; leave out (or null) to "
        "keep it. Deliveries still waiting go to the new URL, and failures count afresh.",
    )
    events: list[EventType] | None = Field(
        default=None, min_length=1, description="The event types to send; null: all of them."
    )
    store_ids: list[WireStoreId] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_STORE_IDS,
        description="Only these stores' incident events; null: every store the key may see.",
    )


class Webhook(BaseModel):
    """A subscription; its secret is never shown again after it is made."""

    # Read from its row by `model_validate`.
    model_config = response_config()

    id: uuid.UUID
    url: str
    events: list[EventType]
    store_ids: list[str] | None = Field(description="null: every store the key may see.")
    created_at: datetime
    enabled: bool = Field(description="false once disabled: no events are sent to it then.")
    disabled_at: datetime | None = Field(description="When it was disabled; null if enabled.")
    disabled_reason: str | None = Field(description="Why it was disabled; null if enabled.")
    failing_since: datetime | None = Field(
        description="The first failed attempt since the last success; null while deliveries "
        "succeed. A subscription failing for a day is disabled."
    )
    previous_secret_until: datetime | None = Field(
        description="After a rotation that kept the previous secret: until when events are (or "
        "were) signed with it too, a second signature; null if there was none."
    )


class WebhookWithSecret(Webhook):
    """A webhook with its secret: answered when it is made and when its secret is rotated,
    never again."""

    secret: str = Field(
        description="`whsec_...`: verify signatures with it. Shown this once only.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


MAX_KEEP_PREVIOUS_HOURS: Final = 168


class RotateWebhookSecretRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"keep_previous_hours": 24}]}
    )

    keep_previous_hours: int = Field(
        default=DEFAULT_KEEP_PREVIOUS // timedelta(hours=1),
        ge=0,
        le=MAX_KEEP_PREVIOUS_HOURS,
        description="How long events are signed with the previous secret as well, so that the "
        "receiver can switch secrets without refusing any; 0 ends the previous secret now "
        "(after a leak).",
    )


class WebhookList(BaseModel):
    model_config = response_config()

    webhooks: list[Webhook] = Field(description="Oldest first.")


class WebhookTestSent(BaseModel):
    model_config = response_config()

    delivery_id: uuid.UUID = Field(description="The test's delivery: see its attempts.")


class DeliveryAttempt(BaseModel):
    """One POST of an event to the subscription."""

    model_config = response_config()

    # Read from its row by `model_validate`.
    webhook_id: str = Field(
        validation_alias="event_id",
        description="The `webhook-id` sent: the event's, on every retry.",
    )
    event_type: str
    attempt: int = Field(ge=1, description="1 for the first attempt at this event.")
    sent_at: datetime
    status_code: int | None = Field(description="The receiver's answer; null if none came.")
    error: str | None = Field(description="Why no answer came (time-out, refused, ...).")
    duration_ms: float = Field(ge=0)

    @field_validator("webhook_id", mode="before")
    @classmethod
    def _as_sent(cls, value: object) -> object:
        return event_id(value) if isinstance(value, uuid.UUID) else value


class DeliveryAttemptList(BaseModel):
    model_config = response_config()

    attempts: list[DeliveryAttempt] = Field(description="Newest first.")
    next_cursor: NextCursor = None
