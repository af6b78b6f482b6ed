"""The live view: stores evaluated as polls arrive, with the report's own rules
(`engine.live.evaluate_live`), and what each evaluation announced written beside its state.

An ingest marks the stores it changed and makes sure an evaluation is pending, in its own
transaction (`db.live_state.mark_changed`); after its commit the edge queues it (`queue_next`).
Evaluations are leased work (`store_monitor.work`) run one at a time, in order: each reads N
and the changes, evaluates the changed stores (every store when N moved) at N, and in one
fenced transaction writes their state, records `incident.opened` / `incident.closed` in the
outbox and deletes the changes it covered; changes that arrived meanwhile are kept for the next.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Unpack
from uuid import UUID

import polars as pl
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor.db import live_state
from store_monitor.db.live_state import DownPage, DownQuery, Plan
from store_monitor.db.models import LiveEvaluation, ReportStatus
from store_monitor.db.report_inputs import load_report_inputs
from store_monitor.db.session import reading
from store_monitor.db.store_hours import StoreHoursCache
from store_monitor.engine.live import LiveEvaluation as Evaluated
from store_monitor.engine.live import evaluate_live, poll_windows
from store_monitor.engine.localtime import computable_timezone
from store_monitor.frames import DEFAULT_TIMEZONE, LIVE_STATE, PollWindows
from store_monitor.webhooks import outbox
from store_monitor.webhooks.events import (
    AnyEvent,
    IncidentOpenedData,
    IncidentOpenedEvent,
    incident_closed_events,
)
from store_monitor.work.attempt import Attempt, Claimed, run
from store_monitor.work.lease import LeaseLost, Runner, finished_values
from store_monitor.work.queue import WorkQueue
from store_monitor.work.table import Hold, WorkTable

log = logging.getLogger(__name__)

EVALUATE_LIVE: Final = "evaluate_live"
"""The job of an evaluation's attempt; its arguments: the evaluation id as text, the attempt."""

EVALUATIONS: Final = WorkTable(
    kind=EVALUATE_LIVE,
    model=LiveEvaluation,
    noun="live evaluation",
    order_by=(LiveEvaluation.seq,),
    waiting=live_state.no_earlier_unfinished,
)


async def queue_next(session: AsyncSession, queue: WorkQueue) -> None:
    """Queue the pending evaluation that is next in line, if any: after an ingest's commit (or
    an evaluation's). A queue that cannot take it (Redis away) leaves it to the sweep."""
    try:
        due = await live_state.next_pending(session)
        await session.rollback()
        if due is not None:
            evaluation_id, attempt = due
            await queue.enqueue(EVALUATE_LIVE, (evaluation_id,), attempt)
    except Exception:
        log.warning("could not queue the live evaluation; the sweep will", exc_info=True)


async def run_evaluation(
    sessionmaker: async_sessionmaker[AsyncSession],
    evaluation_id: UUID,
    attempt: int,
    runner: Runner,
    *,
    queue: WorkQueue | None = None,
    hours: StoreHoursCache | None = None,
) -> ReportStatus | None:
    """The job's body: make attempt `attempt` of the evaluation, if it is waiting for it (and
    every earlier evaluation is finished); then queue the next one on `queue`. The status the
    attempt left it with; None if it did not run. Errors and takeovers: `work.attempt.run`.
    `hours`: the runner's copy of the business hours and zones, used while current."""
    hold = Hold(sessionmaker, EVALUATIONS, (evaluation_id,), attempt, runner)
    status = await run(EvaluationAttempt(hold, hours=hours), runner)
    if status is ReportStatus.complete and queue is not None:
        async with reading(sessionmaker) as session:
            await queue_next(session, queue)
    return status


class EvaluationAttempt(Attempt):
    def __init__(self, hold: Hold, *, hours: StoreHoursCache | None = None) -> None:
        super().__init__(hold)
        self.hours = hours

    async def claim(self) -> Claimed | None:
        row = await self.hold.claim(LiveEvaluation.id)
        return None if row is None else Claimed(request_id=None)

    async def work(self) -> ReportStatus:
        sessionmaker = self.hold.sessionmaker
        async with reading(sessionmaker) as session:
            plan = await live_state.read_plan(session)
            nothing_to_do = plan.now is None or (not plan.all_stores and plan.changes.is_empty())
            evaluated = None if nothing_to_do else await _evaluate(session, plan, self.hours)
        async with sessionmaker.begin() as session:
            if not await _write(session, self.hold, plan, evaluated):
                raise LeaseLost
        return ReportStatus.complete


@dataclass(frozen=True, kw_only=True, slots=True)
class _Evaluated:
    result: Evaluated
    latest: pl.DataFrame
    """`store_id`, `latest_poll_at` of every evaluated store (and of its unsettled ones)."""


async def _evaluate(session: AsyncSession, plan: Plan, hours: StoreHoursCache | None) -> _Evaluated:
    """Each store evaluated on its poll window's polls; those it was too short for (an incident
    runs across its start) again on the week's."""
    now = plan.now
    assert now is not None
    store_ids = None if plan.all_stores else plan.changes["store_id"].to_list()
    state = await live_state.read_state(session, store_ids)
    await session.rollback()  # the inputs are read in a snapshot of their own, in parts
    windows = poll_windows(state, now=now)
    first = await _read_and_evaluate(session, state, now, store_ids, windows, hours)
    unsettled = first.result.unsettled
    if unsettled.is_empty():
        return first
    rest = await _read_and_evaluate(session, state, now, unsettled.to_list(), None, hours)
    latest = pl.concat([first.latest, rest.latest]).group_by("store_id").max()
    return _Evaluated(result=first.result.merged(rest.result), latest=latest)


async def _read_and_evaluate(
    session: AsyncSession,
    state: pl.DataFrame,
    now: datetime,
    store_ids: list[str] | None,
    windows: PollWindows | None,
    hours: StoreHoursCache | None,
) -> _Evaluated:
    inputs = await load_report_inputs(
        session, as_of=now, count_later=False, store_ids=store_ids, windows=windows, hours=hours
    )
    # The live engine joins the polls' stores with frames of texts: read as texts.
    polls = inputs.polls.with_columns(pl.col("store_id").cast(pl.String))
    result = await asyncio.to_thread(
        evaluate_live,
        polls,
        inputs.business_hours,
        inputs.timezones,
        state,
        now=now,
        windows=windows,
    )
    latest = polls.group_by("store_id").agg(latest_poll_at=pl.col("timestamp_utc").max())
    return _Evaluated(result=result, latest=latest)


async def _write(
    session: AsyncSession, hold: Hold, plan: Plan, evaluated: _Evaluated | None
) -> bool:
    """The evaluation's one transaction: its row complete (fenced: only if the attempt still
    holds it), the stores' state, the events, the covered changes deleted, and the next
    evaluation made pending if changes remain. False, writing nothing, if the fence failed."""
    events = [] if evaluated is None else _events(evaluated.result, datetime.now(UTC))
    stores = 0 if evaluated is None else evaluated.result.state.height
    held = await session.execute(
        sa.update(LiveEvaluation)
        .where(*hold.fence())
        .values(
            {
                **finished_values(),
                "now": plan.now,
                "stores_evaluated": stores,
                "events": len(events),
            }
        )
        .returning(LiveEvaluation.id)
    )
    if held.one_or_none() is None:
        return False
    if evaluated is not None and plan.now is not None:
        await live_state.write_state(session, _new_state(evaluated), now=plan.now)
        await outbox.record(session, events)
    if await live_state.clear_changes(session, plan.changes):
        # Arrived during this evaluation: the next one covers them.
        await live_state.ensure_pending(session)
    return True


def _new_state(evaluated: _Evaluated) -> pl.DataFrame:
    result = evaluated.result
    return (
        result.state.select(LIVE_STATE.names())
        .join(result.down_now.select("store_id", down_since="since"), on="store_id", how="left")
        .join(evaluated.latest, on="store_id", how="left")
    )


def _events(result: Evaluated, timestamp: datetime) -> list[AnyEvent]:
    opened: list[AnyEvent] = [
        IncidentOpenedEvent(
            timestamp=timestamp,
            data=IncidentOpenedData(store_id=row["store_id"], started_at=row["started_at"]),
        )
        for row in result.opened.iter_rows(named=True)
    ]
    return [*opened, *incident_closed_events(result.closed, timestamp=timestamp)]


@dataclass(frozen=True, kw_only=True, slots=True)
class DownStore:
    store_id: str
    since: datetime
    minutes: float
    """From `since` to the evaluation's N, 2 decimals."""
    latest_poll_at: datetime
    timezone: str
    """The store's IANA zone, as its reports use it (the default one if unknown)."""


async def down_now(session: AsyncSession, **query: Unpack[DownQuery]) -> DownPage[DownStore]:
    """The stores down now (an owner's only, with `owner_id`), longest first: a page of them."""
    page = await live_state.down_now(session, **query)
    now = page.now
    stores = [
        DownStore(
            store_id=row.store_id,
            since=row.since,
            minutes=0.0 if now is None else round((now - row.since).total_seconds() / 60, 2),
            latest_poll_at=row.latest_poll_at,
            timezone=row.timezone_str
            if row.timezone_str is not None and computable_timezone(row.timezone_str)
            else DEFAULT_TIMEZONE,
        )
        for row in page.stores
    ]
    return DownPage(now=now, latest_poll_at=page.latest_poll_at, total=page.total, stores=stores)
