"""A delivery's job: one attempt at sending an event to a subscription, as leased work.

An attempt claims the delivery (see `store_monitor.work`), POSTs the stored body with the
subscription's secret (`WebhookSender.deliver`), and records the attempt. A 2xx completes the
delivery. Anything else makes it pending again, due after `retry_delay`, and queues that
attempt (the sweep queues it too, once due, should that job be lost); the last allowed attempt
fails it. A subscription whose every attempt has failed for `disable_after` is disabled, its
waiting deliveries failed. A runner killed mid-attempt leaves its lease to run out: the sweep's
takeover sends again, with the same `webhook-id`.
"""

import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor.db.models import (
    Event,
    ReportStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from store_monitor.db.session import reading
from store_monitor.webhooks.backoff import retry_delay
from store_monitor.webhooks.events import event_id
from store_monitor.webhooks.sending import DeliveryResult, WebhookSender
from store_monitor.work.attempt import Attempt, Claimed, run
from store_monitor.work.lease import (
    LeaseLost,
    Runner,
    db_clock,
    failed_values,
    finished_values,
    given_back_values,
)
from store_monitor.work.queue import WorkQueue, queue_attempt
from store_monitor.work.table import Hold, WorkTable, key_id

log = logging.getLogger(__name__)

RUN_DELIVERY: Final = "run_delivery"
"""The job of a delivery's attempt; its arguments: the delivery id as text, the attempt."""
DISABLE_AFTER: Final = timedelta(days=1)


def _due() -> sa.ColumnElement[bool]:
    # A delivery waiting out its backoff is not swept until it is due.
    return WebhookDelivery.due_at <= db_clock()


DELIVERIES: Final = WorkTable(
    kind=RUN_DELIVERY,
    model=WebhookDelivery,
    noun="webhook delivery",
    order_by=(WebhookDelivery.due_at,),
    waiting=_due,
)


@dataclass(frozen=True, kw_only=True)
class DeliveryPolicy:
    """How deliveries are sent and retried: from the `webhook_*` settings."""

    sender: WebhookSender
    max_attempts: int
    retry_base_seconds: float
    disable_after: timedelta = DISABLE_AFTER
    random: Callable[[], float] = field(default=random.random)


async def run_delivery(
    sessionmaker: async_sessionmaker[AsyncSession],
    delivery_id: uuid.UUID,
    attempt: int,
    runner: Runner,
    policy: DeliveryPolicy,
    *,
    queue: WorkQueue | None = None,
) -> ReportStatus | None:
    """The job's body: attempt `attempt` at the delivery, if it is waiting for it (see
    `store_monitor.work.attempt.run`); the status it left the delivery with (`pending`: to be
    retried), None if it did not run. `queue` takes the next attempt, due after the backoff."""
    runner = replace(runner, max_attempts=policy.max_attempts)
    hold = Hold(sessionmaker, DELIVERIES, (delivery_id,), attempt, runner)
    return await run(DeliveryAttempt(hold, policy, queue), runner)


class DeliveryAttempt(Attempt):
    def __init__(self, hold: Hold, policy: DeliveryPolicy, queue: WorkQueue | None) -> None:
        super().__init__(hold)
        self.policy = policy
        self.queue = queue
        self.subscription_id = uuid.UUID(int=0)
        self.event_id = uuid.UUID(int=0)

    @property
    def delivery_id(self) -> uuid.UUID:
        return key_id(self.hold.key)

    async def claim(self) -> Claimed | None:
        row = await self.hold.claim(WebhookDelivery.subscription_id, WebhookDelivery.event_id)
        if row is None:
            return None
        self.subscription_id, self.event_id = row
        return Claimed(request_id=None)

    async def work(self) -> ReportStatus:
        async with reading(self.hold.sessionmaker) as session:
            target = (
                await session.execute(
                    sa.select(
                        WebhookSubscription.url,
                        WebhookSubscription.secret,
                        WebhookSubscription.disabled_at,
                        Event.type,
                        Event.body,
                    )
                    .select_from(WebhookDelivery)
                    .join(WebhookSubscription)
                    .join(Event, Event.id == WebhookDelivery.event_id)
                    .where(WebhookDelivery.id == self.delivery_id)
                )
            ).one_or_none()
        if target is None:  # the subscription was deleted, its deliveries with it
            raise LeaseLost
        if target.disabled_at is not None:
            if not await self.fail("the subscription is disabled"):
                raise LeaseLost
            return ReportStatus.failed
        result = await self.policy.sender.deliver(
            url=target.url, secret=target.secret, event_id=event_id(self.event_id), body=target.body
        )
        status, delay = await self._record(result, target.type)
        if delay is not None and self.queue is not None:
            due_at = datetime.now(UTC) + timedelta(seconds=delay)
            retry = self.number + 1
            await queue_attempt(self.queue, DELIVERIES, self.hold.key, retry, due_at=due_at)
        return status

    async def _record(
        self, result: DeliveryResult, event_type: str
    ) -> tuple[ReportStatus, float | None]:
        """The attempt's row and the delivery's new state, in one transaction; the status and,
        for a retry, its delay. `LeaseLost` (the attempt still recorded) if not held."""
        delay = None
        if result.succeeded:
            status, values = ReportStatus.complete, finished_values()
        else:
            delay = retry_delay(
                self.number,
                max_attempts=self.policy.max_attempts,
                base_seconds=self.policy.retry_base_seconds,
                random=self.policy.random,
            )
            why = _describe(result)
            if delay is None:
                status, values = ReportStatus.failed, failed_values(why)
            else:
                status = ReportStatus.pending
                values = {**given_back_values(why), "due_at": db_clock(plus=delay)}
        async with self.hold.sessionmaker.begin() as session:
            session.add(
                WebhookAttempt(
                    subscription_id=self.subscription_id,
                    delivery_id=self.delivery_id,
                    event_id=self.event_id,
                    event_type=event_type,
                    attempt=self.number,
                    sent_at=datetime.now(UTC) - timedelta(seconds=result.duration_seconds),
                    status_code=result.status_code,
                    error=result.error,
                    duration_ms=round(result.duration_seconds * 1000, 1),
                )
            )
            held = await session.execute(
                sa.update(WebhookDelivery)
                .where(*self.hold.fence())
                .values(values)
                .returning(WebhookDelivery.id)
            )
            if held.one_or_none() is not None:
                await self._mark_subscription(session, succeeded=result.succeeded)
                return status, delay
        raise LeaseLost

    async def _mark_subscription(self, session: AsyncSession, *, succeeded: bool) -> None:
        subscription = WebhookSubscription.id == self.subscription_id
        if succeeded:
            # Only when it was failing: concurrent successes then never queue on the row's lock.
            await session.execute(
                sa.update(WebhookSubscription)
                .where(subscription, WebhookSubscription.failing_since.is_not(None))
                .values(failing_since=None)
            )
            return
        await session.execute(
            sa.update(WebhookSubscription)
            .where(subscription)
            .values(failing_since=sa.func.coalesce(WebhookSubscription.failing_since, db_clock()))
        )
        await disable_if_failing(session, self.subscription_id, self.policy.disable_after)


async def queue_first_attempt(queue: WorkQueue, delivery_id: uuid.UUID) -> None:
    """Queue a committed delivery's first attempt now; the sweep's, if the queue is away."""
    await queue_attempt(queue, DELIVERIES, (delivery_id,), 1)


async def disable_if_failing(
    session: AsyncSession, subscription_id: uuid.UUID, disable_after: timedelta
) -> bool:
    """Disable the subscription if every attempt since `failing_since` failed for at least
    `disable_after` (by the database's clock), failing its waiting deliveries; whether it did."""
    disabled = await session.scalar(
        sa.update(WebhookSubscription)
        .where(
            WebhookSubscription.id == subscription_id,
            WebhookSubscription.disabled_at.is_(None),
            WebhookSubscription.failing_since <= db_clock(plus=-disable_after.total_seconds()),
        )
        .values(
            disabled_at=db_clock(),
            disabled_reason=sa.func.concat(
                "every delivery attempt failed since ",
                sa.func.to_char(
                    sa.func.timezone("UTC", WebhookSubscription.failing_since),
                    'YYYY-MM-DD"T"HH24:MI:SS"Z"',
                ),
            ),
        )
        .returning(WebhookSubscription.id)
    )
    if disabled is None:
        return False
    await session.execute(
        sa.update(WebhookDelivery)
        .where(
            WebhookDelivery.subscription_id == subscription_id,
            WebhookDelivery.status == ReportStatus.pending,
        )
        .values(failed_values("the subscription was disabled"))
    )
    log.warning("webhook %s disabled: every delivery failed for a day", subscription_id)
    return True


def _describe(result: DeliveryResult) -> str:
    if result.error is not None:
        return result.error
    return f"the receiver answered {result.status_code}"
