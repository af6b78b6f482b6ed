"""The wire schemas of the webhook routes: subscribing, listing, testing, delivery attempts."""

import uuid
from datetime import datetime
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from store_monitor.db.models import WebhookAttempt, WebhookSubscription
from store_monitor.sources import STORE_ID_MAX_CHARS, STORE_ID_PATTERN
from store_monitor.webhooks.events import EventType, event_id
from store_monitor.webhooks.targets import MAX_URL_LENGTH

MAX_STORE_IDS: Final = 100
"""So that a body of as many store ids, at their longest, is within the 64 KiB body limit."""
_ALWAYS_SENT = ConfigDict(json_schema_serialization_defaults_required=True)

WireStoreId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=STORE_ID_MAX_CHARS, pattern=STORE_ID_PATTERN),
]


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


class Webhook(BaseModel):
    """A subscription; its secret is never shown again after it is made."""

    model_config = _ALWAYS_SENT

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

    @classmethod
    def of(cls, subscription: WebhookSubscription) -> "Webhook":
        return cls(
            id=subscription.id,
            url=subscription.url,
            events=[EventType(event) for event in subscription.events],
            store_ids=subscription.store_ids,
            created_at=subscription.created_at,
            enabled=subscription.disabled_at is None,
            disabled_at=subscription.disabled_at,
            disabled_reason=subscription.disabled_reason,
            failing_since=subscription.failing_since,
        )


class CreatedWebhook(Webhook):
    secret: str = Field(
        description="`whsec_...`: verify signatures with it. Shown this once only.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class WebhookList(BaseModel):
    model_config = _ALWAYS_SENT

    webhooks: list[Webhook] = Field(description="Oldest first.")


class WebhookTestSent(BaseModel):
    model_config = _ALWAYS_SENT

    delivery_id: uuid.UUID = Field(description="The test's delivery: see its attempts.")


class DeliveryAttempt(BaseModel):
    """One POST of an event to the subscription."""

    model_config = _ALWAYS_SENT

    webhook_id: str = Field(description="The `webhook-id` sent: the event's, on every retry.")
    event_type: str
    attempt: int = Field(ge=1, description="1 for the first attempt at this event.")
    sent_at: datetime
    status_code: int | None = Field(description="The receiver's answer; null if none came.")
    error: str | None = Field(description="Why no answer came (time-out, refused, ...).")
    duration_ms: float = Field(ge=0)

    @classmethod
    def of(cls, attempt: WebhookAttempt) -> "DeliveryAttempt":
        return cls(
            webhook_id=event_id(attempt.event_id),
            event_type=attempt.event_type,
            attempt=attempt.attempt,
            sent_at=attempt.sent_at,
            status_code=attempt.status_code,
            error=attempt.error,
            duration_ms=attempt.duration_ms,
        )


class DeliveryAttemptList(BaseModel):
    model_config = _ALWAYS_SENT

    attempts: list[DeliveryAttempt] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null on the last page."
    )
