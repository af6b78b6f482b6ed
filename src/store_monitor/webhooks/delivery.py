"""A delivery's job: one attempt at sending an event to a subscription, as leased work.

An attempt claims the delivery (see `store_monitor.work`), POSTs the stored body with the
subscription's secret (`WebhookSender.deliver`), and records the attempt. A job claims its own
delivery's attempt and the next attempts of up to `DeliveryPolicy.batch` - 1 other due ones in
one statement, reading what they send with it, and makes them all at once on shared connections:
each is still its own attempt, under its own lease, recorded on its own. A 2xx completes the
delivery. Anything else makes it pending again, due after `retry_delay`, and queues that
attempt (the sweep queues it too, once due, should that job be lost); the last allowed attempt
fails it. A subscription whose every attempt has failed for `disable_after` is disabled, its
waiting deliveries failed. A runner killed mid-attempt leaves its lease to run out: the sweep's
takeover sends again, with the same `webhook-id`.
"""

import functools
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from store_monitor.concurrency import gather_all
from store_monitor.db.models import (
    Event,
    ReportStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from store_monitor.db.session import transient_error
from store_monitor.webhooks.backoff import retry_delay
from store_monitor.webhooks.events import event_id
from store_monitor.webhooks.failing import DISABLE_AFTER, disable_if_failing, failing_mark
from store_monitor.webhooks.outbox import key_ended
from store_monitor.webhooks.sending import Connections, DeliveryResult, WebhookSender
from store_monitor.work.attempt import Attempt, Claimed, run
from store_monitor.work.lease import (
    LeaseLost,
    Runner,
    claimed_values,
    db_clock,
    failed_values,
    finished_values,
    given_back_values,
)
from store_monitor.work.queue import WorkQueue, queue_attempt
from store_monitor.work.table import Hold, WorkTable

log = logging.getLogger(__name__)

RUN_DELIVERY: Final = "run_delivery"
"""The job of a delivery's attempt; its arguments: the delivery id as text, the attempt."""


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
    batch: int = 32
    """Deliveries a job claims and sends at once: its own and other due ones."""


def _signing_secrets() -> sa.ColumnElement[list[str]]:
    """A subscription's secret, then its previous one while that still signs."""
    previous = sa.case(
        (
            WebhookSubscription.previous_secret_until > sa.func.statement_timestamp(),
            WebhookSubscription.previous_secret,
        )
    )
    return sa.func.array_remove(
        postgresql.array([WebhookSubscription.secret, previous]),
        sa.null(),
        type_=postgresql.ARRAY(sa.Text),
    )


def _disabled_reason() -> sa.ColumnElement[str | None]:
    """Why a subscription is disabled (its reason, or that it is), or NULL while it is enabled."""
    return sa.case(
        (
            WebhookSubscription.disabled_at.is_not(None),
            sa.func.coalesce(WebhookSubscription.disabled_reason, "no reason was recorded"),
        )
    )


async def run_delivery(
    sessionmaker: async_sessionmaker[AsyncSession],
    delivery_id: uuid.UUID,
    attempt: int,
    runner: Runner,
    policy: DeliveryPolicy,
    *,
    queue: WorkQueue | None = None,
) -> ReportStatus | None:
    """The job's body: attempt `attempt` at the delivery, if it is waiting for it, and the next
    attempts at other due deliveries with it (up to `policy.batch` in all), each as
    `store_monitor.work.attempt.run` makes it; the status its own delivery was left with
    (`pending`: to be retried), None if its attempt did not run. `queue` takes the next
    attempts, due after the backoff."""
    runner = replace(runner, max_attempts=policy.max_attempts)
    try:
        # Cancelled as it commits, its deliveries wait for their leases to run out (the sweep).
        claimed = await _claim_batch(sessionmaker, delivery_id, attempt, runner, policy.batch)
    except Exception as error:
        if not transient_error(error):
            raise
        log.warning(
            "webhook delivery %s: attempt %d could not start, the database is unavailable; "
            "the sweep queues it again",
            delivery_id,
            attempt,
            exc_info=True,
        )
        return None
    async with policy.sender.connections() as connections:
        attempts = [
            DeliveryAttempt(
                Hold(sessionmaker, DELIVERIES, (target.delivery_id,), target.attempt, runner),
                policy,
                queue,
                target,
                connections,
            )
            for target in claimed
        ]
        # Every attempt ends with the job, a cancelled one once it has given its delivery back.
        statuses = await gather_all(*(run(made, runner) for made in attempts))
    own = (s for t, s in zip(claimed, statuses, strict=True) if t.delivery_id == delivery_id)
    return next(own, None)


@dataclass(frozen=True, kw_only=True, slots=True)
class _Target:
    """A claimed delivery's attempt, and what it sends where."""

    delivery_id: uuid.UUID
    attempt: int
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    url: str | None
    """None (like every field read from the subscription) if it was deleted meanwhile."""
    secrets: list[str] | None
    """What it is signed with: the secret, and the previous one until it ends."""
    disabled_reason: str | None
    """Why the subscription is disabled; None while it is enabled."""
    key_ended: bool | None
    """Whether the subscription's key is revoked or has expired (`outbox.key_ended`)."""
    event_type: str
    body: bytes


async def _claim_batch(
    sessionmaker: async_sessionmaker[AsyncSession],
    delivery_id: uuid.UUID,
    attempt: int,
    runner: Runner,
    size: int,
) -> list[_Target]:
    """In one statement: attempt `attempt` at the delivery, if it is waiting for it, and the
    next attempt at up to `size` - 1 other pending, due deliveries that have attempts left (none
    locked by another claim), oldest due first; what each sends, read as it is claimed."""
    bound = {_DELIVERY_ID.key: delivery_id, _ATTEMPT.key: attempt}
    async with sessionmaker.begin() as session:
        rows = await session.execute(_claim_statement(runner, size), bound)
        return [_Target(**dict(zip(_TARGET_FIELDS, row, strict=True))) for row in rows]


# The statements a delivery runs are built once and bind what varies: building and keying one
# for the compiled cache costs more of the runner's CPU than sending the delivery.
# (Not named as a column: a parameter named so would also set that column of an UPDATE.)
_DELIVERY_ID: Final = sa.bindparam("delivery", type_=sa.Uuid)
_ATTEMPT: Final = sa.bindparam("attempt_number", type_=sa.Integer)
_SUBSCRIPTION_ID: Final = sa.bindparam("subscription", type_=sa.Uuid)


@functools.lru_cache(maxsize=4)
def _claim_statement(runner: Runner, size: int) -> sa.Update:
    """`_claim_batch`'s statement for a runner (each has one) and a batch size."""
    model = WebhookDelivery
    own = model.id == _DELIVERY_ID
    own_waits = sa.and_(model.attempts < _ATTEMPT, runner.max_attempts >= _ATTEMPT)
    others_wait = sa.and_(
        ~own, model.status == ReportStatus.pending, model.attempts < runner.max_attempts
    )
    picked = (
        sa.select(model.id)
        .where(DELIVERIES.needs_attempt(), sa.or_(sa.and_(own, own_waits), others_wait))
        .order_by(own.desc(), model.due_at)
        .limit(size)
        .with_for_update(skip_locked=True)
    )

    def subscriptions(
        column: sa.ColumnElement[Any] | InstrumentedAttribute[Any],
    ) -> sa.ScalarSelect[Any]:
        of = WebhookSubscription.id == model.subscription_id
        return sa.select(column).where(of).scalar_subquery()

    def events(column: InstrumentedAttribute[Any]) -> sa.ScalarSelect[Any]:
        return sa.select(column).where(Event.id == model.event_id).scalar_subquery()

    attempts = sa.case((own, _ATTEMPT), else_=model.attempts + 1)
    return (
        sa.update(model)
        .where(model.id.in_(picked.scalar_subquery()))
        .values(claimed_values(runner, attempts))
        .returning(
            model.id,
            model.attempts,
            model.subscription_id,
            model.event_id,
            subscriptions(WebhookSubscription.url),
            subscriptions(_signing_secrets()),
            subscriptions(_disabled_reason()),
            subscriptions(key_ended()),
            events(Event.type),
            events(Event.body),
        )
        .execution_options(synchronize_session=False)
    )


_TARGET_FIELDS: Final = (
    "delivery_id",
    "attempt",
    "subscription_id",
    "event_id",
    "url",
    "secrets",
    "disabled_reason",
    "key_ended",
    "event_type",
    "body",
)


class DeliveryAttempt(Attempt):
    """One claimed delivery's attempt (claimed in its job's batch)."""

    def __init__(
        self,
        hold: Hold,
        policy: DeliveryPolicy,
        queue: WorkQueue | None,
        target: _Target,
        connections: Connections,
    ) -> None:
        super().__init__(hold)
        self.policy = policy
        self.queue = queue
        self.target = target
        self.connections = connections

    @property
    def delivery_id(self) -> uuid.UUID:
        return self.target.delivery_id

    async def claim(self) -> Claimed | None:
        return Claimed(request_id=None)  # claimed with its batch

    async def work(self) -> ReportStatus:
        target = self.target
        if target.url is None or target.secrets is None:
            raise LeaseLost  # the subscription was deleted, its deliveries with it
        ended = None
        if target.disabled_reason is not None:
            ended = f"the subscription is disabled: {target.disabled_reason}"
        elif target.key_ended:
            ended = "the API key that made the subscription is revoked or has expired"
        if ended is not None:
            if not await self.fail(ended):
                raise LeaseLost
            return ReportStatus.failed
        result = await self.policy.sender.deliver(
            url=target.url,
            secrets=target.secrets,
            event_id=event_id(target.event_id),
            body=target.body,
            connections=self.connections,
        )
        status, delay = await self._record(result, target.event_type)
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
        statement = _recorded_success() if result.succeeded else _recorded(values, succeeded=False)
        bound = {
            _DELIVERY_ID.key: self.delivery_id,
            _ATTEMPT.key: self.number,
            _SUBSCRIPTION_ID.key: self.target.subscription_id,
            "row_event_id": self.target.event_id,
            "row_event_type": event_type,
            "row_sent_at": datetime.now(UTC) - timedelta(seconds=result.duration_seconds),
            "row_status_code": result.status_code,
            "row_error": result.error,
            "row_duration_ms": round(result.duration_seconds * 1000, 1),
        }
        async with self.hold.sessionmaker.begin() as session:
            if (await session.execute(statement, bound)).one_or_none() is not None:
                if not result.succeeded:
                    await disable_if_failing(
                        session, self.target.subscription_id, self.policy.disable_after
                    )
                return status, delay
        raise LeaseLost


_ROW_COLUMNS: Final = ("event_id", "event_type", "sent_at", "status_code", "error", "duration_ms")
"""The attempt's row's own columns, bound as `row_<column>`."""


def _recorded(values: dict[str, object], *, succeeded: bool) -> sa.Select[tuple[uuid.UUID]]:
    """An attempt's row, its delivery's `values` (fenced: the delivery's id, if held) and its
    subscription's failing mark (cleared by a success, else set if not already), in one
    statement: data-modifying CTEs, each run once whether read or not."""
    held = (
        sa.update(WebhookDelivery)
        .where(*DELIVERIES.held((_DELIVERY_ID,), _ATTEMPT))
        .values(values)
        .returning(WebhookDelivery.id)
        .cte("held")
    )
    columns = WebhookAttempt.__table__.c
    row = sa.insert(WebhookAttempt).values(
        subscription_id=_SUBSCRIPTION_ID,
        delivery_id=_DELIVERY_ID,
        attempt=_ATTEMPT,
        **{name: sa.bindparam(f"row_{name}", type_=columns[name].type) for name in _ROW_COLUMNS},
    )
    held_attempt = sa.exists(sa.select(held.c.id))
    mark = failing_mark(_SUBSCRIPTION_ID, held_attempt, succeeded=succeeded)
    return sa.select(held.c.id).add_cte(row.cte("row"), mark.cte("mark"))


@functools.cache
def _recorded_success() -> sa.Select[tuple[uuid.UUID]]:
    return _recorded(finished_values(), succeeded=True)


async def queue_first_attempt(queue: WorkQueue, delivery_id: uuid.UUID) -> None:
    """Queue a committed delivery's first attempt now; the sweep's, if the queue is away."""
    await queue_attempt(queue, DELIVERIES, (delivery_id,), 1)


def _describe(result: DeliveryResult) -> str:
    if result.error is not None:
        return result.error
    return f"the receiver answered {result.status_code}"
