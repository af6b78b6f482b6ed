"""Webhook routes: subscribe, list, read, change, rotate the secret, enable again, delete, send a
test, list delivery attempts."""

import contextlib
import inspect
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Final

from fastapi import (
    APIRouter,
    Body,
    Depends,
    FastAPI,
    Path,
    Query,
    Request,
    Response,
    Security,
    status,
)

from store_monitor import webhook_subscriptions as subscriptions
from store_monitor.api.routes.report_openapi import UNAVAILABLE
from store_monitor.api.small_body import MAX_BODY_BYTES, SmallBodyRoute
from store_monitor.api.webhook_schemas import (
    CreateWebhookRequest,
    DeliveryAttempt,
    DeliveryAttemptList,
    RotateWebhookSecretRequest,
    UpdateWebhookRequest,
    Webhook,
    WebhookList,
    WebhookTestSent,
    WebhookWithSecret,
)
from store_monitor.web.auth import READ_REPORTS, ReportReaderDep
from store_monitor.web.cursors import CursorQuery
from store_monitor.web.deps import SessionDep, SettingsDep, StateDep
from store_monitor.web.errors import ApiError, documented, invalid_request, not_found
from store_monitor.web.rate_limits import counted_as, too_many_webhook_tests
from store_monitor.webhooks.delivery import queue_first_attempt
from store_monitor.webhooks.events import (
    EVENT_MODELS,
    TEST_EVENT_TYPE,
    AnyEvent,
    WebhookTestEvent,
)
from store_monitor.webhooks.targets import UnsafeTargetError

MAX_PAGE: Final = 200

# Reports keys and owner keys subscribe (admin too); each sees the subscriptions it made.
router = APIRouter(
    tags=["webhooks"],
    route_class=SmallBodyRoute,
    dependencies=[Security(READ_REPORTS)],
)

WebhookId = Annotated[uuid.UUID, Path(description="The subscription's id.")]
NOT_FOUND: Final = {404: "This key has no webhook with this id (`webhook_not_found`)."}
INVALID: Final = {422: "The request is malformed (`invalid_request`)."}
UNREADABLE_BODY: Final = {
    400: "The body cannot be read as JSON text (`bad_request`).",
    413: f"The body is over {MAX_BODY_BYTES} bytes (`payload_too_large`).",
}
URL_REFUSED: Final = {
    422: "The URL may not receive webhooks, or the body is malformed (`invalid_request`)."
}
KEEP_PREVIOUS_A_DAY: Final = RotateWebhookSecretRequest()


async def _subscriber(principal: ReportReaderDep) -> subscriptions.Subscriber:
    return subscriptions.Subscriber(
        key_name=principal.key_name, owner_id=principal.owner_id, sees_all=principal.is_admin
    )


SubscriberDep = Annotated[subscriptions.Subscriber, Depends(_subscriber)]


@contextlib.contextmanager
def _found() -> Iterator[None]:
    """A webhook the key may not see, or that is gone, is answered 404 `webhook_not_found`."""
    try:
        yield
    except subscriptions.SubscriptionNotFound as error:
        raise not_found("webhook", str(error), webhook_id=str(error.subscription_id)) from error


@contextlib.contextmanager
def _url_checked() -> Iterator[None]:
    """A URL webhooks may not go to is answered 422, naming `body.url`."""
    try:
        yield
    except UnsafeTargetError as error:
        raise invalid_request("body.url", str(error)) from error


@router.post(
    "/webhooks",
    operation_id="create_webhook",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookWithSecret,
    response_description="Subscribed; the secret is shown this once.",
    responses=documented(
        {
            **UNREADABLE_BODY,
            409: "The key has as many webhooks as it may (`too_many_webhooks`).",
            **URL_REFUSED,
            **UNAVAILABLE,
        }
    ),
    summary="Subscribe a URL to events",
)
async def create_webhook(
    session: SessionDep,
    settings: SettingsDep,
    subscriber: SubscriberDep,
    body: Annotated[CreateWebhookRequest, Body()],
) -> WebhookWithSecret:
    """Events are signed per Standard Webhooks with the returned `secret`. An owner key's
    webhooks get only its stores' incident events."""
    with _url_checked():
        created = await subscriptions.create(
            session,
            subscriber,
            url=body.url,
            events=body.events,
            store_ids=body.store_ids,
            allow_private=settings.webhook_private_targets,
            max_per_key=settings.webhook_max_subscriptions,
        )
    return _with_secret(created)


def _with_secret(shown: subscriptions.WithSecret) -> WebhookWithSecret:
    webhook = Webhook.model_validate(shown.subscription)
    return WebhookWithSecret(**webhook.model_dump(), secret=shown.secret)


@router.patch(
    "/webhooks/{webhook_id}",
    operation_id="update_webhook",
    response_model=Webhook,
    response_description="Changed; events recorded from now on go where it says.",
    responses=documented(
        {
            **UNREADABLE_BODY,
            **NOT_FOUND,
            **URL_REFUSED,
            **UNAVAILABLE,
        }
    ),
    summary="Change a webhook's URL, events or stores",
)
async def update_webhook(
    webhook_id: WebhookId,
    session: SessionDep,
    settings: SettingsDep,
    subscriber: SubscriberDep,
    body: Annotated[UpdateWebhookRequest, Body()],
) -> Webhook:
    """Only the fields in the body change: `{"events": null}` sends every event type again,
    `{"store_ids": null}` every store's. Its secret, deliveries and attempts stay."""
    given = body.model_fields_set
    with _url_checked(), _found():
        updated = await subscriptions.update(
            session,
            subscriber,
            webhook_id,
            url=body.url if body.url is not None else subscriptions.KEEP,
            events=body.events if "events" in given else subscriptions.KEEP,
            store_ids=body.store_ids if "store_ids" in given else subscriptions.KEEP,
            allow_private=settings.webhook_private_targets,
        )
    return Webhook.model_validate(updated)


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    operation_id="rotate_webhook_secret",
    response_model=WebhookWithSecret,
    response_description="Rotated; the new secret is shown this once.",
    responses=documented(
        {
            **UNREADABLE_BODY,
            **NOT_FOUND,
            **INVALID,
            **UNAVAILABLE,
        }
    ),
    summary="Give a webhook a new secret",
)
async def rotate_webhook_secret(
    webhook_id: WebhookId,
    session: SessionDep,
    subscriber: SubscriberDep,
    body: Annotated[RotateWebhookSecretRequest, Body()] = KEEP_PREVIOUS_A_DAY,
) -> WebhookWithSecret:
    """From now on events are signed with the new secret, and for `keep_previous_hours` (24 by
    default) with the previous one too: each request then carries two signatures, and a
    receiver verifying with either secret accepts it. Switch the receiver to the new secret
    within that time. Rotating again ends a previous secret still signing."""
    with _found():
        rotated = await subscriptions.rotate_secret(
            session,
            subscriber,
            webhook_id,
            keep_previous=timedelta(hours=body.keep_previous_hours),
        )
    return _with_secret(rotated)


@router.get(
    "/webhooks",
    operation_id="list_webhooks",
    response_model=WebhookList,
    responses=documented({**UNAVAILABLE}),
    summary="List this key's webhooks",
)
async def list_webhooks(session: SessionDep, subscriber: SubscriberDep) -> WebhookList:
    """The webhooks this key made (an admin key: all of them), without their secrets."""
    found = await subscriptions.list_visible(session, subscriber)
    return WebhookList(webhooks=[Webhook.model_validate(subscription) for subscription in found])


@router.get(
    "/webhooks/{webhook_id}",
    operation_id="get_webhook",
    response_model=Webhook,
    responses=documented({**NOT_FOUND, **INVALID, **UNAVAILABLE}),
    summary="Read a webhook",
)
async def get_webhook(
    webhook_id: WebhookId, session: SessionDep, subscriber: SubscriberDep
) -> Webhook:
    """Says whether it is enabled, and if it was disabled, since when and why."""
    with _found():
        return Webhook.model_validate(await subscriptions.get(session, subscriber, webhook_id))


@router.post(
    "/webhooks/{webhook_id}/enable",
    operation_id="enable_webhook",
    response_model=Webhook,
    response_description="Enabled: events recorded from now on are sent to it.",
    responses=documented(
        {
            **NOT_FOUND,
            409: "The key that made it is revoked or has expired (`webhook_key_ended`).",
            **INVALID,
            **UNAVAILABLE,
        }
    ),
    summary="Enable a disabled webhook again",
)
async def enable_webhook(
    webhook_id: WebhookId, session: SessionDep, subscriber: SubscriberDep
) -> Webhook:
    """For a webhook disabled after a day of failed deliveries, once its receiver works again
    (an enabled one is left as it is). It gets the events recorded from now on; what it missed
    is not sent again: the deliveries failed when it was disabled stay failed (see its
    deliveries), and events recorded while it was disabled were not meant for it. Its failures
    count afresh: a day of them from now disables it again. A webhook whose key was revoked
    or has expired cannot be enabled: nothing would be sent to it."""
    with _found():
        try:
            enabled = await subscriptions.enable(session, subscriber, webhook_id)
        except subscriptions.KeyEnded as error:
            raise ApiError(
                status.HTTP_409_CONFLICT,
                "webhook_key_ended",
                str(error),
                {"webhook_id": str(error.subscription_id)},
            ) from error
    return Webhook.model_validate(enabled)


@router.delete(
    "/webhooks/{webhook_id}",
    operation_id="delete_webhook",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    response_description="Deleted, with its deliveries: nothing more is sent to it.",
    responses=documented({**NOT_FOUND, **INVALID, **UNAVAILABLE}),
    summary="Delete a webhook",
)
async def delete_webhook(
    webhook_id: WebhookId, session: SessionDep, subscriber: SubscriberDep
) -> Response:
    with _found():
        await subscriptions.delete(session, subscriber, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/webhooks/{webhook_id}/test",
    operation_id="test_webhook",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookTestSent,
    response_description="A `webhook.test` event is on its way; see the deliveries.",
    responses=documented(
        {
            **NOT_FOUND,
            **INVALID,
            429: "The key sent more test events than `webhook_test_rate` allows "
            "(`too_many_webhook_tests`); `Retry-After` says when it may send the next.",
            **UNAVAILABLE,
        }
    ),
    summary="Send a test event",
)
async def test_webhook(
    webhook_id: WebhookId,
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: ReportReaderDep,
    subscriber: SubscriberDep,
) -> WebhookTestSent:
    """Sent, signed and retried as every event is, to this webhook alone; at most
    `webhook_test_rate` (10 a minute by default) per key."""
    wait = await state.webhook_test_limiter.retry_after(counted_as(request, principal.key_hash))
    if wait is not None:
        raise too_many_webhook_tests(wait)
    with _found():
        delivery_id = await subscriptions.send_test(session, subscriber, webhook_id)
    # Committed first, so that the job finds its delivery.
    await session.commit()
    await queue_first_attempt(state.queue, delivery_id)
    return WebhookTestSent(delivery_id=delivery_id)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    operation_id="list_webhook_deliveries",
    response_model=DeliveryAttemptList,
    responses=documented({**NOT_FOUND, **INVALID, **UNAVAILABLE}),
    summary="List a webhook's delivery attempts, newest first",
)
async def list_webhook_deliveries(
    webhook_id: WebhookId,
    session: SessionDep,
    subscriber: SubscriberDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE, description=f"Attempts per page, at most {MAX_PAGE}.")
    ] = 50,
    cursor: CursorQuery = None,
) -> DeliveryAttemptList:
    """Every attempt: when it was sent, the status code or the error, how long it took."""
    before = None
    if cursor is not None:
        if not cursor.isdigit() or len(cursor) > 19:
            raise invalid_request("query.cursor", "not a cursor of this list")
        before = int(cursor)
    with _found():
        found = await subscriptions.attempts(
            session, subscriber, webhook_id, limit=limit + 1, before=before
        )
    page = found[:limit]
    more = len(found) > limit
    return DeliveryAttemptList(
        attempts=[DeliveryAttempt.model_validate(attempt) for attempt in page],
        next_cursor=str(page[-1].seq) if more else None,
    )


_SIGNATURE_NOTE: Final = (
    "\n\nSigned per Standard Webhooks: headers `webhook-id` (the event's id, the same on every "
    "retry), `webhook-timestamp`, `webhook-signature` (`v1,<base64 HMAC-SHA256>`). Answer 2xx "
    "within 10 s; anything else is retried with backoff."
)


def document_events(app: FastAPI) -> None:
    """The events as OpenAPI 3.1 `webhooks`: one entry per type, its body the event's model."""
    for name, model in [*EVENT_MODELS.items(), (TEST_EVENT_TYPE, WebhookTestEvent)]:
        description = inspect.cleandoc(model.__doc__ or "") + _SIGNATURE_NOTE

        def receive(body: Annotated[AnyEvent, Body()]) -> None:
            """Never called: documents what is sent."""

        receive.__annotations__["body"] = Annotated[model, Body()]
        app.webhooks.add_api_route(
            str(name),
            receive,
            methods=["POST"],
            operation_id=f"event_{str(name).replace('.', '_')}",
            summary=str(name),
            description=description,
            status_code=status.HTTP_204_NO_CONTENT,
            response_class=Response,
            response_description="Received (any 2xx).",
            # Any other answer is the receiver's own: it is retried (no error body expected).
            responses={"default": {"description": "Not received: the event is sent again."}},
            tags=["events"],
            # Sent by the service, not called on it: client generators that read `webhooks` as
            # operations (openapi-generator) skip internal ones rather than make broken methods.
            openapi_extra={"x-internal": True},
        )
