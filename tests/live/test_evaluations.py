"""Live evaluations on Postgres: ingests mark their stores, evaluations (leased work, one at a
time) announce in the outbox what the contract says, once, whatever the batches."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from engine.frames import hours, zones
from store_monitor import ingest, jobs, live
from store_monitor.db import live_state
from store_monitor.db.models import LiveChange, LiveEvaluation, LiveStore, ReportStatus
from store_monitor.runtime import upkeep_of
from store_monitor.settings import Settings
from store_monitor.webhooks.events import IncidentClosedEvent, IncidentOpenedEvent
from store_monitor.work.lease import LeaseLost
from store_monitor.work.sweep import sweep
from store_monitor.work.table import Hold
from support.work import RecordingQueue

from .conftest import (
    RUNNER,
    Sessions,
    evaluate,
    evaluations,
    events,
    ingest_polls,
    polls,
)

T0 = datetime(2023, 1, 20, tzinfo=UTC)
HOUR = timedelta(hours=1)


def at(hours: float) -> datetime:
    return T0 + hours * HOUR


def history() -> list[tuple[str, str, datetime]]:
    """Two days of hourly polls of stores a and b (open 24x7); a was down twice meanwhile."""
    rows = []
    for hour in range(49):
        down = hour in (10, 11, 40)
        rows.append(("a", "inactive" if down else "active", at(hour)))
        rows.append(("b", "active", at(hour)))
    return rows


async def test_loading_a_history_floods_no_one(sessions: Sessions) -> None:
    await ingest_polls(sessions, polls(*history()))

    assert await evaluate(sessions) == [ReportStatus.complete]

    assert await events(sessions) == []
    [evaluation] = await evaluations(sessions)
    assert (evaluation.now, evaluation.stores_evaluated, evaluation.events) == (at(48), 2, 0)
    async with sessions() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(LiveChange)) == 0
        thresholds = dict(
            (await session.execute(sa.select(LiveStore.store_id, LiveStore.threshold))).all()
        )
    # The first evaluation's threshold is raised to each store's latest poll.
    assert thresholds == {"a": at(48), "b": at(48)}


async def test_hour_by_hour_an_incident_is_opened_then_closed_once(sessions: Sessions) -> None:
    await ingest_polls(sessions, polls(*history()))
    await evaluate(sessions)

    # Inactive from the midpoint between the active poll at 48 h and this one.
    await ingest_polls(sessions, polls(("a", "inactive", at(49)), ("b", "active", at(49))))
    await evaluate(sessions)
    [opened] = await events(sessions)
    assert isinstance(opened, IncidentOpenedEvent)
    assert (opened.data.store_id, opened.data.started_at) == ("a", at(48.5))
    async with sessions() as session:
        view = await live.down_now(session, owner_id=None)
    assert view.now == at(49)
    assert [(s.store_id, s.since, s.minutes) for s in view.stores] == [("a", at(48.5), 30.0)]

    await ingest_polls(sessions, polls(("a", "inactive", at(50)), ("b", "active", at(50))))
    await evaluate(sessions)
    assert len(await events(sessions)) == 1  # still the same incident: nothing new

    await ingest_polls(sessions, polls(("a", "active", at(51)), ("b", "active", at(51))))
    await evaluate(sessions)
    _, closed = await events(sessions)
    assert isinstance(closed, IncidentClosedEvent)
    assert closed.data.model_dump() == {
        "store_id": "a",
        "started_at": at(48.5),
        "ended_at": at(50.5),
        "minutes": 120.0,
    }
    async with sessions() as session:
        assert (await live.down_now(session, owner_id=None)).stores == []

    # A late poll (before the store's latest) changes no event already sent.
    await ingest_polls(sessions, polls(("a", "active", at(49.5))))
    await evaluate(sessions)
    assert len(await events(sessions)) == 2


async def test_several_ingests_are_covered_by_one_evaluation(sessions: Sessions) -> None:
    await ingest_polls(sessions, polls(*history()))
    await evaluate(sessions)

    for hour, status in ((49, "inactive"), (50, "inactive"), (51, "active")):
        await ingest_polls(sessions, polls(("a", status, at(hour)), ("b", "active", at(hour))))

    # The three ingests made one evaluation pending, which covers them all.
    assert await evaluate(sessions) == [ReportStatus.complete]
    assert len(await evaluations(sessions)) == 2
    # Begun and ended between two evaluations: announced closed, never opened.
    [closed] = await events(sessions)
    assert isinstance(closed, IncidentClosedEvent)
    assert (closed.data.started_at, closed.data.ended_at) == (at(48.5), at(50.5))
    async with sessions() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(LiveChange)) == 0


async def test_the_changed_stores_are_evaluated_and_every_store_when_n_moved(
    sessions: Sessions,
) -> None:
    await ingest_polls(sessions, polls(*history()))
    await evaluate(sessions)

    # A poll of b alone, later than every other: N moves, and a is evaluated at it too.
    await ingest_polls(sessions, polls(("b", "active", at(49))))
    await evaluate(sessions)
    # A late poll of b: N stays, and b alone is evaluated.
    await ingest_polls(sessions, polls(("b", "active", at(48.5))))
    await evaluate(sessions)

    assert [(e.now, e.stores_evaluated) for e in await evaluations(sessions)] == [
        (at(48), 2),
        (at(49), 2),
        (at(49), 1),
    ]


async def test_replacing_hours_or_time_zones_marks_their_stores(sessions: Sessions) -> None:
    await ingest_polls(sessions, polls(*history()))
    await evaluate(sessions)

    async with sessions.begin() as session:
        await ingest.ingest_business_hours(session, hours(("a", 0, "09:00", "17:00")))
    await evaluate(sessions)
    async with sessions.begin() as session:
        await ingest.ingest_timezones(session, zones(("b", "Asia/Tokyo")))
    await evaluate(sessions)

    assert [(e.now, e.stores_evaluated) for e in await evaluations(sessions)] == [
        (at(48), 2),
        (at(48), 1),
        (at(48), 1),
    ]


async def test_changes_arriving_during_an_evaluation_are_kept_for_the_next(
    sessions: Sessions,
) -> None:
    await ingest_polls(sessions, polls(*history()))
    [evaluation] = await evaluations(sessions)
    attempt = live.EvaluationAttempt(Hold(sessions, live.EVALUATIONS, (evaluation.id,), 1, RUNNER))
    assert await attempt.claim() is not None
    async with sessions() as session:
        plan = await live_state.read_plan(session)
    # An ingest commits while the evaluation computes: its store's change is newer.
    await ingest_polls(sessions, polls(("a", "inactive", at(49))))
    async with sessions.begin() as session:
        assert await live._write(session, attempt.hold, plan, None)

    async with sessions() as session:
        left = (await session.execute(sa.select(LiveChange.store_id))).scalars().all()
        pending = await live_state.next_pending(session)
    assert left == ["a"]
    assert pending is not None


async def test_a_dead_evaluation_is_taken_over_and_its_late_write_fenced(
    sessions: Sessions,
) -> None:
    await ingest_polls(sessions, polls(*history()))
    await evaluate(sessions)
    await ingest_polls(sessions, polls(("a", "inactive", at(49)), ("b", "active", at(49))))
    [_, evaluation] = await evaluations(sessions)
    key = (evaluation.id,)

    # Attempt 1 claims the evaluation, then its runner stalls: its lease runs out.
    stalled = live.EvaluationAttempt(Hold(sessions, live.EVALUATIONS, key, 1, RUNNER))
    assert await stalled.claim() is not None
    async with sessions.begin() as session:
        await session.execute(
            sa.update(LiveEvaluation)
            .where(LiveEvaluation.id == evaluation.id)
            .values(lease_expires_at=sa.func.now() - timedelta(seconds=1))
        )
    queue = RecordingQueue()
    swept = await sweep(sessions, live.EVALUATIONS, queue, max_attempts=3)
    assert swept.taken_over == [key]
    assert queue.queued == [(live.EVALUATE_LIVE, key, 2)]

    assert await live.run_evaluation(sessions, evaluation.id, 2, RUNNER) is ReportStatus.complete
    assert len(await events(sessions)) == 1

    # The stalled attempt comes back: its write is fenced off, nothing is announced twice.
    try:
        await stalled.work()
    except LeaseLost:
        pass
    else:
        raise AssertionError("the late write was not fenced")
    assert len(await events(sessions)) == 1


async def test_evaluations_run_one_at_a_time_in_order(sessions: Sessions) -> None:
    await ingest_polls(sessions, polls(*history()))
    [first] = await evaluations(sessions)
    first_attempt = live.EvaluationAttempt(Hold(sessions, live.EVALUATIONS, (first.id,), 1, RUNNER))
    assert await first_attempt.claim() is not None
    await ingest_polls(sessions, polls(("a", "inactive", at(49))))
    [_, second] = await evaluations(sessions)

    # The second may not start while the first runs, nor be swept.
    assert await live.run_evaluation(sessions, second.id, 1, RUNNER) is None
    queue = RecordingQueue()
    await jobs.upkeep_round(sessions, queue, upkeep_of(Settings()))
    assert (live.EVALUATE_LIVE, (second.id,), 1) not in queue.queued

    await first_attempt.work()
    # Once the first is done, the second is next in line.
    assert await live.run_evaluation(sessions, second.id, 1, RUNNER) is ReportStatus.complete


async def test_retention_keeps_the_latest_complete_evaluation(sessions: Sessions) -> None:
    await ingest_polls(sessions, polls(*history()))
    await evaluate(sessions)
    await ingest_polls(sessions, polls(("a", "active", at(49)), ("b", "active", at(49))))
    await evaluate(sessions)
    _, latest = await evaluations(sessions)

    async with sessions.begin() as session:
        deleted = await live_state.delete_evaluations_before(
            session, datetime.now(UTC) + timedelta(minutes=1)
        )
    assert deleted == 1
    assert [e.id for e in await evaluations(sessions)] == [latest.id]
    # Its N is still what the next evaluation compares with: a late poll, N unchanged,
    # evaluates the changed store only.
    await ingest_polls(sessions, polls(("a", "active", at(48.5))))
    await evaluate(sessions)
    assert (await evaluations(sessions))[-1].stores_evaluated == 1
