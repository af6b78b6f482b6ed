"""Deliveries as leased work, against real receivers on 127.0.0.1: signed bodies verified with
the `standardwebhooks` library, retries after 503s and time-outs, a receiver down for a while,
the last attempt failing the delivery, a day of failures disabling the subscription, and which
subscriptions an event is delivered to (owners get their stores' only)."""

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook, WebhookVerificationError

from store_monitor import jobs
from store_monitor.db.models import (
    ApiKey,
    ReportStatus,
    StoreOwner,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.webhook_subscriptions import Subscriber, rotate_secret, update
from store_monitor.webhooks.delivery import RUN_DELIVERY, DeliveryPolicy, run_delivery
from store_monitor.webhooks.events import (
    EventType,
    IncidentOpenedData,
    IncidentOpenedEvent,
    ReportFailedData,
    ReportFailedEvent,
    event_id,
)
from store_monitor.webhooks.outbox import record
from store_monitor.webhooks.sending import WebhookSender
from store_monitor.webhooks.signing import new_secret
from store_monitor.work.lease import Runner
from support.processes import free_port
from webhooks.receivers import Receiver, hang, in_turn, receiver, respond

Sessions = async_sessionmaker[AsyncSession]
AT = datetime(2023, 1, 24, 10, 44, 30, tzinfo=UTC)
RUNNER = Runner(owner="tests", lease_seconds=15.0, timeout_seconds=30.0, max_attempts=3)


def policy(
    *, max_attempts: int = 12, base: float = 0.05, timeout: float = 5.0, batch: int = 32
) -> DeliveryPolicy:
    sender = WebhookSender(
        allow_private=True, connect_timeout_seconds=1.0, total_timeout_seconds=timeout
    )
    # No jitter: the tests' pauses are exactly `base`, 3 x `base`, ...
    return DeliveryPolicy(
        sender=sender,
        max_attempts=max_attempts,
        retry_base_seconds=base,
        random=lambda: 0.5,
        batch=batch,
    )


def opened(store_id: str) -> IncidentOpenedEvent:
    return IncidentOpenedEvent(
        timestamp=AT, data=IncidentOpenedData(store_id=store_id, started_at=AT)
    )


async def subscribe(
    sessions: Sessions,
    url: str,
    *,
    owner_id: str | None = None,
    store_ids: list[str] | None = None,
    events: list[str] | None = None,
) -> WebhookSubscription:
    async with sessions.begin() as session:
        subscription = WebhookSubscription(
            url=url,
            secret=new_secret(),
            events=events or [str(event) for event in EventType],
            store_ids=store_ids,
            key_name=owner_id or "reports-key",
            owner_id=owner_id,
        )
        session.add(subscription)
    return subscription


async def announce(sessions: Sessions, *events: IncidentOpenedEvent) -> list[uuid.UUID]:
    async with sessions.begin() as session:
        return await record(session, events)


async def deliveries(sessions: Sessions) -> list[WebhookDelivery]:
    async with sessions() as session:
        found = await session.scalars(
            sa.select(WebhookDelivery).order_by(WebhookDelivery.created_at)
        )
        return list(found)


async def attempts(sessions: Sessions) -> list[WebhookAttempt]:
    async with sessions() as session:
        found = await session.scalars(sa.select(WebhookAttempt).order_by(WebhookAttempt.seq))
        return list(found)


def verified(request_headers: dict[str, str], body: bytes, secret: str) -> object:
    """The body as the `standardwebhooks` library verifies it (raises if the signature is bad)."""
    return Webhook(secret).verify(body, request_headers)


@contextlib.asynccontextmanager
async def running(sessions: Sessions, delivery: DeliveryPolicy) -> AsyncIterator[None]:
    """The in-process queue, with the first attempt of every delivery queued on it."""
    queue = jobs.in_process_queue(sessions, RUNNER, delivery, concurrency=4)
    try:
        for found in await deliveries(sessions):
            await queue.enqueue(RUN_DELIVERY, (found.id,), 1)
        yield
    finally:
        await queue.close()


async def settled(sessions: Sessions, *, within: float = 20.0) -> list[WebhookDelivery]:
    """The deliveries once none is pending or running."""
    async with asyncio.timeout(within):
        while True:
            found = await deliveries(sessions)
            if all(d.status in (ReportStatus.complete, ReportStatus.failed) for d in found):
                return found
            await asyncio.sleep(0.05)


async def test_a_delivery_is_signed_as_the_library_verifies_and_recorded(
    sessions: Sessions,
) -> None:
    async with receiver(respond(204)) as hook:
        subscription = await subscribe(sessions, hook.url())
        [key] = await announce(sessions, opened("s1"))
        [delivery] = await deliveries(sessions)
        status = await run_delivery(sessions, delivery.id, 1, RUNNER, policy())
    assert status is ReportStatus.complete
    [request] = hook.requests
    assert request.headers["webhook-id"] == event_id(key)
    body = verified(request.headers, request.body, subscription.secret)
    assert body == json.loads(opened("s1").model_dump_json())
    [attempt] = await attempts(sessions)
    assert (attempt.attempt, attempt.status_code, attempt.error) == (1, 204, None)
    assert attempt.event_id == key


async def test_after_a_rotation_both_secrets_sign_until_the_previous_one_ends(
    sessions: Sessions,
) -> None:
    its_key = Subscriber(key_name="reports-key", owner_id=None, sees_all=False)
    async with receiver(respond(204)) as hook:
        subscription = await subscribe(sessions, hook.url())

        async def rotate(keep: timedelta) -> str:
            async with sessions.begin() as session:
                rotated = await rotate_secret(session, its_key, subscription.id, keep_previous=keep)
            return rotated.secret

        async def signatures(*, verified_by: tuple[str, ...], not_by: str) -> int:
            """Send the next event: how many signatures it carried, each of `verified_by`
            verifying it and `not_by` not."""
            await announce(sessions, opened("s1"))
            [delivery] = [d for d in await deliveries(sessions) if d.status is ReportStatus.pending]
            status = await run_delivery(sessions, delivery.id, 1, RUNNER, policy())
            assert status is ReportStatus.complete
            request = hook.requests[-1]
            for secret in verified_by:
                verified(request.headers, request.body, secret)
            with pytest.raises(WebhookVerificationError):
                verified(request.headers, request.body, not_by)
            return len(request.headers["webhook-signature"].split(" "))

        old = subscription.secret
        new = await rotate(timedelta(hours=1))
        assert await signatures(verified_by=(new, old), not_by=new_secret()) == 2

        # Once the previous secret's time is over, the new one alone signs.
        async with sessions.begin() as session:
            await session.execute(
                sa.update(WebhookSubscription)
                .where(WebhookSubscription.id == subscription.id)
                .values(previous_secret_until=sa.func.now() - timedelta(seconds=1))
            )
        assert await signatures(verified_by=(new,), not_by=old) == 1

        # Rotated without keeping the previous secret (after a leak): the new one alone, at once.
        newest = await rotate(timedelta(0))
        assert await signatures(verified_by=(newest,), not_by=new) == 1


async def test_a_delivery_waiting_goes_to_the_url_the_subscription_moved_to(
    sessions: Sessions,
) -> None:
    its_key = Subscriber(key_name="reports-key", owner_id=None, sees_all=False)
    async with receiver(respond(500)) as old, receiver(respond(204)) as new:
        subscription = await subscribe(sessions, old.url())
        await announce(sessions, opened("s1"))
        [delivery] = await deliveries(sessions)
        assert await run_delivery(sessions, delivery.id, 1, RUNNER, policy()) is (
            ReportStatus.pending
        )
        assert (await _subscription(sessions, subscription.id)).failing_since is not None
        async with sessions.begin() as session:
            await update(session, its_key, subscription.id, url=new.url(), allow_private=True)
        # A new receiver: its failures count afresh.
        assert (await _subscription(sessions, subscription.id)).failing_since is None
        assert await run_delivery(sessions, delivery.id, 2, RUNNER, policy()) is (
            ReportStatus.complete
        )
    assert (len(old.requests), len(new.requests)) == (1, 1)
    assert new.requests[0].headers["webhook-id"] == old.requests[0].headers["webhook-id"]


async def test_a_rotation_waiting_on_another_keeps_the_secret_that_one_made(
    sessions: Sessions,
) -> None:
    its_key = Subscriber(key_name="reports-key", owner_id=None, sees_all=False)
    subscription = await subscribe(sessions, "http://127.0.0.1:9/hook")
    keep = timedelta(hours=1)

    async def second_rotation() -> str:
        async with sessions.begin() as session:
            rotated = await rotate_secret(session, its_key, subscription.id, keep_previous=keep)
            return rotated.secret

    async with sessions.begin() as first:
        made_first = (
            await rotate_secret(first, its_key, subscription.id, keep_previous=keep)
        ).secret
        # The second reads the subscription as it was, then waits for this one's row lock.
        second = asyncio.create_task(second_rotation())
        await asyncio.sleep(0.3)
        assert not second.done()
    made_second = await second
    async with sessions() as session:
        stored = await session.get_one(WebhookSubscription, subscription.id)
    assert (stored.secret, stored.previous_secret) == (made_second, made_first)


async def test_deliveries_made_by_the_same_built_statements_are_each_stamped_and_recorded(
    sessions: Sessions,
) -> None:
    # A job's claim and record are built once and bind what varies: each delivery must still
    # get its own times, attempt row and fence.
    async with receiver(respond(204)) as hook:
        await subscribe(sessions, hook.url())
        keys = await announce(sessions, opened("s1"), opened("s2"))
        first, second = await deliveries(sessions)
        for made in (first, second):
            assert await run_delivery(sessions, made.id, 1, RUNNER, policy(batch=1)) is (
                ReportStatus.complete
            )
            await asyncio.sleep(0.01)
    first, second = await deliveries(sessions)
    stamps = [first.started_at, first.finished_at, second.started_at, second.finished_at]
    assert None not in stamps
    assert stamps == sorted(stamps)  # type: ignore[type-var]
    assert first.finished_at != second.started_at
    tried = await attempts(sessions)
    assert [(a.delivery_id, a.event_id, a.attempt) for a in tried] == [
        (first.id, keys[0], 1),
        (second.id, keys[1], 1),
    ]
    assert tried[0].sent_at < tried[1].sent_at


async def test_a_job_sends_the_other_due_deliveries_with_its_own(
    sessions: Sessions,
) -> None:
    async with receiver(respond(204, keep_alive=True)) as hook:
        subscription = await subscribe(sessions, hook.url())
        keys = await announce(sessions, opened("s1"), opened("s2"), opened("s3"))
        first, second, third = await deliveries(sessions)
        # One is given to a job of its own already: the batch leaves it alone.
        async with sessions.begin() as session:
            await session.execute(
                sa.update(WebhookDelivery)
                .where(WebhookDelivery.id == third.id)
                .values(due_at=datetime.now(UTC) + timedelta(hours=1))
            )
        assert await run_delivery(sessions, second.id, 1, RUNNER, policy()) is (
            ReportStatus.complete
        )
        # The first was sent with it: its own job finds nothing to do.
        assert await run_delivery(sessions, first.id, 1, RUNNER, policy()) is None
    found = {d.id: d for d in await deliveries(sessions)}
    assert [(found[d.id].status, found[d.id].attempts) for d in (first, second, third)] == [
        (ReportStatus.complete, 1),
        (ReportStatus.complete, 1),
        (ReportStatus.pending, 0),
    ]
    assert sorted(r.headers["webhook-id"] for r in hook.requests) == sorted(
        event_id(key) for key in keys[:2]
    )
    for request in hook.requests:
        verified(request.headers, request.body, subscription.secret)
    assert sorted(a.attempt for a in await attempts(sessions)) == [1, 1]


async def test_a_503_is_retried_after_the_backoff_with_the_same_webhook_id(
    sessions: Sessions,
) -> None:
    async with receiver(in_turn(respond(503), respond(204))) as hook:
        subscription = await subscribe(sessions, hook.url())
        [key] = await announce(sessions, opened("s1"))
        async with running(sessions, policy(base=0.3)):
            [delivery] = await settled(sessions)
    assert (delivery.status, delivery.attempts) == (ReportStatus.complete, 2)
    first, second = hook.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event_id(key)
    verified(second.headers, second.body, subscription.secret)
    tried = await attempts(sessions)
    assert [(a.attempt, a.status_code) for a in tried] == [(1, 503), (2, 204)]
    # The retry waited out the backoff (0.3 s, no jitter here).
    assert tried[1].sent_at - tried[0].sent_at >= timedelta(seconds=0.3)


async def test_a_receiver_that_hangs_is_timed_out_and_retried(sessions: Sessions) -> None:
    async with receiver(hang) as hook:
        await subscribe(sessions, hook.url())
        await announce(sessions, opened("s1"))
        [delivery] = await deliveries(sessions)
        status = await run_delivery(sessions, delivery.id, 1, RUNNER, policy(timeout=0.5))
    assert status is ReportStatus.pending
    [attempt] = await attempts(sessions)
    assert attempt.status_code is None
    assert attempt.error == "timed out after 0.5 s"
    [delivery] = await deliveries(sessions)
    assert delivery.error == "timed out after 0.5 s"
    assert delivery.due_at > datetime.now(UTC) - timedelta(seconds=1)


async def test_a_receiver_down_for_a_while_gets_everything_once_back(sessions: Sessions) -> None:
    port = free_port()
    subscription = await subscribe(sessions, f"http://127.0.0.1:{port}/hook")
    keys = await announce(sessions, opened("s1"), opened("s2"), opened("s3"))
    hook: Receiver | None = None
    async with running(sessions, policy(base=0.2)):
        # Connections are refused for a while: every first attempt (and more) fails.
        await _until_attempts(sessions, 6)
        async with receiver(respond(200), port=port) as hook:
            found = await settled(sessions)
    assert hook is not None
    assert all(d.status is ReportStatus.complete for d in found)
    received = {r.headers["webhook-id"] for r in hook.requests}
    assert received == {event_id(key) for key in keys}
    for request in hook.requests:
        verified(request.headers, request.body, subscription.secret)
    failed = [a for a in await attempts(sessions) if a.status_code is None]
    assert len(failed) >= 6
    assert all(a.error is not None and "ConnectError" in a.error for a in failed)


async def test_the_last_allowed_attempt_fails_the_delivery(sessions: Sessions) -> None:
    async with receiver(respond(500)) as hook:
        await subscribe(sessions, hook.url())
        await announce(sessions, opened("s1"))
        async with running(sessions, policy(max_attempts=3, base=0.05)):
            [delivery] = await settled(sessions)
    assert (delivery.status, delivery.attempts) == (ReportStatus.failed, 3)
    assert delivery.error == "the receiver answered 500"
    assert len(hook.requests) == 3


async def test_a_day_of_failures_disables_the_subscription(sessions: Sessions) -> None:
    async with receiver(respond(500)) as hook:
        subscription = await subscribe(sessions, hook.url())
        await announce(sessions, opened("s1"), opened("s2"))
        first, second = await deliveries(sessions)
        # Failing for a bit less than a day: a failure does not disable it yet.
        await _failing_for(sessions, subscription.id, timedelta(hours=23))
        one = policy(batch=1)  # the first delivery's job leaves the second alone
        assert await run_delivery(sessions, first.id, 1, RUNNER, one) is ReportStatus.pending
        assert (await _subscription(sessions, subscription.id)).disabled_at is None
        # A day: the next failure disables it, and its waiting deliveries fail.
        await _failing_for(sessions, subscription.id, timedelta(days=1, minutes=1))
        assert await run_delivery(sessions, second.id, 1, RUNNER, one) is ReportStatus.pending
    disabled = await _subscription(sessions, subscription.id)
    assert disabled.disabled_at is not None
    assert disabled.disabled_reason is not None
    assert disabled.disabled_reason.startswith("every delivery attempt failed since ")
    assert {d.status for d in await deliveries(sessions)} == {ReportStatus.failed}
    # A disabled subscription gets no new deliveries.
    await announce(sessions, opened("s3"))
    assert len(await deliveries(sessions)) == 2


async def test_nothing_more_is_sent_for_a_key_revoked_or_expired(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        for owner in ("brand", "other", "live"):  # `subscribe` names an owner's key after it
            session.add(
                ApiKey(name=owner, prefix=owner, secret_hash=owner.encode(), owner_id=owner)
            )
            session.add(StoreOwner(store_id=f"{owner}-1", owner_id=owner))
    async with receiver(respond(204)) as hook:
        revoked = await subscribe(sessions, hook.url(), owner_id="brand")
        expired = await subscribe(sessions, hook.url(), owner_id="other")
        in_force = await subscribe(sessions, hook.url(), owner_id="live")
        await announce(sessions, opened("brand-1"), opened("other-1"), opened("live-1"))
        waiting = {d.subscription_id: d for d in await deliveries(sessions)}
        async with sessions.begin() as session:
            await session.execute(
                sa.update(ApiKey).where(ApiKey.name == "brand").values(revoked_at=sa.func.now())
            )
            await session.execute(
                sa.update(ApiKey)
                .where(ApiKey.name == "other")
                .values(expires_at=sa.func.now() - timedelta(seconds=1))
            )
        # Deliveries made before are not sent: each fails, saying why.
        alone = policy(batch=1)
        for subscription, status in (
            (revoked, ReportStatus.failed),
            (expired, ReportStatus.failed),
            (in_force, ReportStatus.complete),
        ):
            delivery_id = waiting[subscription.id].id
            assert await run_delivery(sessions, delivery_id, 1, RUNNER, alone) is status
        # And later events make none for them.
        await announce(sessions, opened("brand-1"), opened("other-1"), opened("live-1"))
    assert len(hook.requests) == 1
    made = await deliveries(sessions)
    assert [d.subscription_id for d in made[3:]] == [in_force.id]
    failed = {d.subscription_id: d.error for d in made[:3] if d.status is ReportStatus.failed}
    reason = "the API key that made the subscription is revoked or has expired"
    assert failed == {revoked.id: reason, expired.id: reason}


async def test_a_waiting_delivery_of_a_disabled_subscription_fails_saying_why(
    sessions: Sessions,
) -> None:
    async with receiver(respond(204)) as hook:
        subscription = await subscribe(sessions, hook.url())
        await announce(sessions, opened("s1"))
        [waiting] = await deliveries(sessions)
        async with sessions.begin() as session:
            await session.execute(
                sa.update(WebhookSubscription)
                .where(WebhookSubscription.id == subscription.id)
                .values(disabled_at=sa.func.now(), disabled_reason="its API key was revoked")
            )
        assert await run_delivery(sessions, waiting.id, 1, RUNNER, policy()) is ReportStatus.failed
    assert hook.requests == []
    [failed] = await deliveries(sessions)
    assert failed.error == "the subscription is disabled: its API key was revoked"


async def test_a_success_resets_the_failing_clock(sessions: Sessions) -> None:
    async with receiver(respond(200)) as hook:
        subscription = await subscribe(sessions, hook.url())
        await announce(sessions, opened("s1"))
        [delivery] = await deliveries(sessions)
        await _failing_for(sessions, subscription.id, timedelta(hours=20))
        assert (
            await run_delivery(sessions, delivery.id, 1, RUNNER, policy()) is ReportStatus.complete
        )
    assert (await _subscription(sessions, subscription.id)).failing_since is None


async def test_events_go_to_the_subscriptions_that_want_them(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        session.add_all([StoreOwner(owner_id="brand", store_id="mine")])
    everything = await subscribe(sessions, "http://127.0.0.1:9/all")
    owner = await subscribe(sessions, "http://127.0.0.1:9/owner", owner_id="brand")
    listed = await subscribe(sessions, "http://127.0.0.1:9/listed", store_ids=["other"])
    reports_only = await subscribe(sessions, "http://127.0.0.1:9/reports", events=["report.failed"])
    failed = ReportFailedEvent(
        timestamp=AT, data=ReportFailedData(report_id=uuid.uuid4(), now=None, error="boom")
    )
    async with sessions.begin() as session:
        mine, other, report = await record(session, [opened("mine"), opened("other"), failed])
    pairs = {(d.subscription_id, d.event_id) for d in await deliveries(sessions)}
    assert pairs == {
        (everything.id, mine),
        (everything.id, other),
        (everything.id, report),
        # An owner's subscription: its stores' incidents, and reports.
        (owner.id, mine),
        (owner.id, report),
        (listed.id, other),
        (listed.id, report),
        (reports_only.id, report),
    }


async def _failing_for(sessions: Sessions, subscription_id: uuid.UUID, span: timedelta) -> None:
    """Make the subscription failing since `span` ago by the database's clock."""
    async with sessions.begin() as session:
        await session.execute(
            sa.update(WebhookSubscription)
            .where(WebhookSubscription.id == subscription_id)
            .values(failing_since=sa.func.statement_timestamp() - span)
        )


async def _subscription(sessions: Sessions, subscription_id: uuid.UUID) -> WebhookSubscription:
    async with sessions() as session:
        found = await session.get(WebhookSubscription, subscription_id)
    assert found is not None
    return found


async def _until_attempts(sessions: Sessions, count: int) -> None:
    async with asyncio.timeout(10):
        while len(await attempts(sessions)) < count:  # noqa: ASYNC110 (it polls the database)
            await asyncio.sleep(0.05)


async def test_a_job_that_cannot_reach_the_database_leaves_its_delivery_to_the_sweep() -> None:
    unreachable = create_engine(
        f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none", process_name="tests"
    )
    try:
        status = await run_delivery(
            create_sessionmaker(unreachable), uuid.uuid4(), 1, RUNNER, policy()
        )
    finally:
        await unreachable.dispose()
    assert status is None
