"""The dashboard's webhook pages: list and subscribe (the secret shown once), one webhook with
its delivery attempts, change its URL and events, rotate its secret (the new one shown once),
send a test, enable a disabled one again, delete. Forms carry the session's CSRF token, as
every form of the dashboard; a key sees only its own webhooks (admin all), as in the API."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final
from uuid import UUID

from fastapi import APIRouter, Form, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from store_monitor import webhook_subscriptions as subscriptions
from store_monitor.ui.context import Page, PageError, ReaderFormPageDep, ReaderPageDep
from store_monitor.web.deps import SessionDep, SettingsDep, StateDep
from store_monitor.web.rate_limits import counted_as
from store_monitor.webhooks.delivery import queue_first_attempt
from store_monitor.webhooks.events import EventType
from store_monitor.webhooks.targets import MAX_URL_LENGTH, UnsafeTargetError

ATTEMPTS_SHOWN: Final = 50


class WebhookForm(BaseModel):
    """The fields of the forms that subscribe and change a webhook (`webhook_fields.html`)."""

    url: str = Field(default="", max_length=MAX_URL_LENGTH)
    events: list[EventType] | None = None
    """None ticked: every event type."""


WebhookFormDep = Annotated[WebhookForm, Form()]

router = APIRouter(include_in_schema=False)


def _subscriber(page: Page) -> subscriptions.Subscriber:
    principal = page.principal
    return subscriptions.Subscriber(
        key_name=principal.key_name, owner_id=principal.owner_id, sees_all=principal.is_admin
    )


@contextmanager
def _found(page: Page) -> Iterator[None]:
    """A webhook the visitor may not see, or that is gone, is answered with the 404 page."""
    try:
        yield
    except subscriptions.SubscriptionNotFound as error:
        raise PageError(page, status.HTTP_404_NOT_FOUND, "Not found", str(error)) from error


async def _list(
    page: Page,
    session: SessionDep,
    *,
    created: subscriptions.WithSecret | None = None,
    problem: str | None = None,
    status_code: int = status.HTTP_200_OK,
) -> Response:
    found = await subscriptions.list_visible(session, _subscriber(page))
    return page.render(
        "webhooks.html",
        {
            "title": "Webhooks",
            "webhooks": found,
            "event_types": [str(event) for event in EventType],
            "created": created,
            "problem": problem,
            "max_url_length": MAX_URL_LENGTH,
        },
        status_code=status_code,
    )


@router.get("/ui/webhooks", response_class=HTMLResponse)
async def webhooks_page(page: ReaderPageDep, session: SessionDep) -> Response:
    return await _list(page, session)


@router.post("/ui/webhooks", response_class=HTMLResponse)
async def subscribe_from_dashboard(
    page: ReaderFormPageDep,
    session: SessionDep,
    settings: SettingsDep,
    form: WebhookFormDep,
) -> Response:
    """Subscribe; the page shows the secret this once (it is never shown again)."""
    try:
        created = await subscriptions.create(
            session,
            _subscriber(page),
            url=form.url.strip(),
            events=form.events or None,
            store_ids=None,
            allow_private=settings.webhook_private_targets,
            max_per_key=settings.webhook_max_subscriptions,
        )
    except (UnsafeTargetError, subscriptions.QuotaReached) as error:
        return await _list(
            page, session, problem=str(error), status_code=status.HTTP_400_BAD_REQUEST
        )
    return await _list(page, session, created=created, status_code=status.HTTP_201_CREATED)


@router.get("/ui/webhooks/{webhook_id}", response_class=HTMLResponse)
async def webhook_page(webhook_id: UUID, page: ReaderPageDep, session: SessionDep) -> Response:
    return await _webhook(page, session, webhook_id)


@router.post("/ui/webhooks/{webhook_id}/rotate-secret", response_class=HTMLResponse)
async def rotate_secret_from_dashboard(
    webhook_id: UUID,
    page: ReaderFormPageDep,
    session: SessionDep,
    end_previous_now: Annotated[bool, Form()] = False,
) -> Response:
    """A new secret, shown on the answer only; the previous one signs too for a day, unless
    the form says to end it now."""
    keep = timedelta(0) if end_previous_now else subscriptions.DEFAULT_KEEP_PREVIOUS
    with _found(page):
        rotated = await subscriptions.rotate_secret(
            session, _subscriber(page), webhook_id, keep_previous=keep
        )
    return await _webhook(page, session, webhook_id, rotated=rotated)


@router.post("/ui/webhooks/{webhook_id}/edit", response_class=RedirectResponse)
async def update_from_dashboard(
    webhook_id: UUID,
    page: ReaderFormPageDep,
    session: SessionDep,
    settings: SettingsDep,
    form: WebhookFormDep,
) -> Response:
    """Change the URL and the events (none ticked: all); the stores stay as they are."""
    with _found(page):
        try:
            await subscriptions.update(
                session,
                _subscriber(page),
                webhook_id,
                url=form.url.strip(),
                events=form.events or None,
                allow_private=settings.webhook_private_targets,
            )
        except UnsafeTargetError as error:
            return await _webhook(
                page,
                session,
                webhook_id,
                problem=str(error),
                edited_url=form.url,
                status_code=status.HTTP_400_BAD_REQUEST,
            )
    return page.redirect_to("webhook_page", webhook_id=webhook_id)


async def _webhook(
    page: Page,
    session: SessionDep,
    webhook_id: UUID,
    *,
    rotated: subscriptions.WithSecret | None = None,
    problem: str | None = None,
    edited_url: str | None = None,
    status_code: int = status.HTTP_200_OK,
) -> Response:
    subscriber = _subscriber(page)
    with _found(page):
        webhook = await subscriptions.get(session, subscriber, webhook_id)
        attempts = await subscriptions.attempts(
            session, subscriber, webhook_id, limit=ATTEMPTS_SHOWN
        )
    return page.render(
        "webhook.html",
        {
            "title": f"Webhook {webhook.url}",
            "webhook": webhook,
            "attempts": attempts,
            "rotated": rotated,
            "now": datetime.now(UTC),
            "problem": problem,
            "edited_url": edited_url,
            "event_types": [str(event) for event in EventType],
            "max_url_length": MAX_URL_LENGTH,
        },
        status_code=status_code,
    )


@router.post("/ui/webhooks/{webhook_id}/test", response_class=RedirectResponse)
async def send_test_from_dashboard(
    webhook_id: UUID, page: ReaderFormPageDep, state: StateDep, session: SessionDep
) -> Response:
    wait = await state.webhook_test_limiter.retry_after(
        counted_as(page.request, page.principal.key_hash)
    )
    if wait is not None:
        return page.over_rate("Too many tests", "This key sent too many test events.", wait)
    with _found(page):
        delivery_id = await subscriptions.send_test(session, _subscriber(page), webhook_id)
    await session.commit()
    await queue_first_attempt(state.queue, delivery_id)
    return page.redirect_to("webhook_page", webhook_id=webhook_id)


@router.post("/ui/webhooks/{webhook_id}/enable", response_class=RedirectResponse)
async def enable_from_dashboard(
    webhook_id: UUID, page: ReaderFormPageDep, session: SessionDep
) -> Response:
    with _found(page):
        try:
            await subscriptions.enable(session, _subscriber(page), webhook_id)
        except subscriptions.KeyEnded as error:
            return page.error(status.HTTP_409_CONFLICT, "Cannot enable", str(error))
    return page.redirect_to("webhook_page", webhook_id=webhook_id)


@router.post("/ui/webhooks/{webhook_id}/delete", response_class=RedirectResponse)
async def delete_from_dashboard(
    webhook_id: UUID, page: ReaderFormPageDep, session: SessionDep
) -> Response:
    with _found(page):
        await subscriptions.delete(session, _subscriber(page), webhook_id)
    return page.redirect_to("webhooks_page")
