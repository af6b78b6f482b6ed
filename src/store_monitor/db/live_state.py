"""The live view's tables in Postgres: the stores changed since their last evaluation, the
evaluations (leased work, one at a time), and each store's announced state and down-now fields.

The SQL only; the rules are `store_monitor.engine.live`, the evaluation `store_monitor.live`.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Generic, Required, TypedDict, TypeVar

import polars as pl
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from store_monitor.db.models import (
    LiveChange,
    LiveEvaluation,
    LiveStore,
    ReportStatus,
    Store,
    Timezone,
)
from store_monitor.db.owners import visible_to
from store_monitor.frames import LIVE_STATE

_UNFINISHED: Final = (ReportStatus.pending, ReportStatus.running)

# One number per ingest for all its stores; a store changed again keeps only the newest.
_MARK_CHANGED: Final = sa.text("""
INSERT INTO live_changes (store_id, change)
SELECT changed.store_id, numbered.change
FROM unnest(CAST(:store_ids AS text[])) AS changed (store_id)
CROSS JOIN (SELECT nextval('live_change_seq') AS change) AS numbered
ON CONFLICT (store_id) DO UPDATE SET change = excluded.change
""")


async def mark_changed(session: AsyncSession, store_ids: Sequence[str]) -> None:
    """Record, in the ingest's transaction, that these stores' data changed, and make sure an
    evaluation not yet started is pending to cover them. Flushes, never commits.

    The pending evaluation found is locked (FOR SHARE) until the ingest commits: its claim
    waits for the commit, so the evaluation cannot start without seeing these changes.
    """
    if not store_ids:
        return
    # Sorted: concurrent ingests lock the rows they share in one order (no deadlock).
    await session.execute(_MARK_CHANGED, {"store_ids": sorted(set(store_ids))})
    await ensure_pending(session)


async def ensure_pending(session: AsyncSession) -> None:
    """Make sure an evaluation not yet started is pending, locking it until the transaction
    ends (see `mark_changed`). Flushes, never commits."""
    pending = await session.scalar(
        sa.select(LiveEvaluation.id)
        .where(LiveEvaluation.status == ReportStatus.pending, LiveEvaluation.attempts == 0)
        .order_by(LiveEvaluation.seq.desc())
        .limit(1)
        .with_for_update(read=True)
    )
    if pending is None:
        await session.execute(sa.insert(LiveEvaluation).values(status=ReportStatus.pending))


def no_earlier_unfinished() -> sa.ColumnElement[bool]:
    """An evaluation may start only once every earlier one is finished: one at a time, in
    order, so that N never goes back for a store."""
    earlier = aliased(LiveEvaluation)
    return ~sa.exists().where(earlier.seq < LiveEvaluation.seq, earlier.status.in_(_UNFINISHED))


async def next_pending(session: AsyncSession) -> tuple[uuid.UUID, int] | None:
    """The first unfinished evaluation, if it is pending: its id and the attempt to queue."""
    row = (
        await session.execute(
            sa.select(LiveEvaluation.id, LiveEvaluation.status, LiveEvaluation.attempts)
            .where(LiveEvaluation.status.in_(_UNFINISHED))
            .order_by(LiveEvaluation.seq)
            .limit(1)
        )
    ).one_or_none()
    if row is None or row.status is not ReportStatus.pending:
        return None
    return row.id, row.attempts + 1


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    """What an evaluation covers, read in one snapshot as it starts."""

    now: datetime | None
    """N, the latest poll of all stores; None without polls."""
    previous_now: datetime | None
    """The N of the latest completed evaluation; None before any."""
    changes: pl.DataFrame
    """`store_id`, `change`: the changes it covers (deleted at its end if unchanged since)."""

    @property
    def all_stores(self) -> bool:
        """N moved: every store is evaluated, not only the changed ones."""
        return self.now != self.previous_now


async def read_plan(session: AsyncSession) -> Plan:
    now = await session.scalar(sa.select(sa.func.max(Store.latest_poll_at)))
    # As two arrays in one row: a row per store costs several times more to fetch.
    store_ids, changes = (
        await session.execute(
            sa.text("SELECT array_agg(store_id), array_agg(change) FROM live_changes")
        )
    ).one()
    return Plan(
        now=now,
        previous_now=await latest_evaluated_now(session),
        changes=pl.DataFrame(
            {"store_id": store_ids or [], "change": changes or []},
            schema={"store_id": pl.String(), "change": pl.Int64()},
        ),
    )


async def latest_evaluated_now(session: AsyncSession) -> datetime | None:
    """The N of the latest completed evaluation; None before any."""
    return await session.scalar(_latest_evaluated_now())


def _latest_evaluated_now() -> sa.Select[datetime | None]:
    return (
        sa.select(LiveEvaluation.now)
        .where(LiveEvaluation.status == ReportStatus.complete)
        .order_by(LiveEvaluation.seq.desc())
        .limit(1)
    )


async def read_state(session: AsyncSession, store_ids: Sequence[str] | None) -> pl.DataFrame:
    """The state rows (schema `LIVE_STATE`) of these stores; of every store with None."""
    # As arrays in one row (see `read_plan`), instants as microseconds: a datetime object per
    # value costs several times more, on both sides.
    columns = (
        await session.execute(
            sa.text(
                f"SELECT array_agg(store_id), array_agg({_microseconds('threshold')}), "
                f"array_agg({_microseconds('announced_started_at')}) "
                "FROM live_stores WHERE CAST(:store_ids AS text[]) IS NULL "
                "OR store_id = ANY(CAST(:store_ids AS text[]))"
            ),
            {"store_ids": None if store_ids is None else list(store_ids)},
        )
    ).one()
    raw = {"store_id": pl.String(), "threshold": pl.Int64(), "announced_started_at": pl.Int64()}
    return pl.DataFrame(
        dict(zip(LIVE_STATE.names(), (values or [] for values in columns), strict=True)),
        schema=raw,
    ).cast(LIVE_STATE)


def _microseconds(column: str) -> str:
    """SQL of a timestamptz column as microseconds since the Unix epoch (Polars' instants)."""
    return f"CAST(extract(epoch FROM {column}) * 1000000 AS bigint)"


def _instant(microseconds: str) -> str:
    """SQL of microseconds since the Unix epoch as a timestamptz (exact, unlike to_timestamp)."""
    return f"CAST('epoch' AS timestamptz) + {microseconds} * interval '1 microsecond'"


_WRITE_STATE: Final = sa.text(f"""
INSERT INTO live_stores
    (store_id, threshold, announced_started_at, down_since, latest_poll_at, evaluated_now)
SELECT s.store_id, {_instant("s.threshold")}, {_instant("s.announced")}, {_instant("s.since")},
    {_instant("s.latest")}, CAST(:now AS timestamptz)
FROM unnest(
    CAST(:store_ids AS text[]), CAST(:thresholds AS bigint[]), CAST(:announced AS bigint[]),
    CAST(:since AS bigint[]), CAST(:latest AS bigint[])
) AS s (store_id, threshold, announced, since, latest)
ON CONFLICT (store_id) DO UPDATE SET
    threshold = excluded.threshold, announced_started_at = excluded.announced_started_at,
    down_since = excluded.down_since, latest_poll_at = excluded.latest_poll_at,
    evaluated_now = excluded.evaluated_now
""")


async def write_state(session: AsyncSession, stores: pl.DataFrame, *, now: datetime) -> None:
    """Replace the evaluated stores' rows: `stores` has LIVE_STATE's columns, `down_since`
    (null when not down) and `latest_poll_at`. Flushes, never commits."""
    if stores.height == 0:
        return
    columns = ("threshold", "announced_started_at", "down_since", "latest_poll_at")
    names = ("thresholds", "announced", "since", "latest")
    # Instants as microseconds: see `read_state`.
    values = {
        name: stores[column].dt.epoch("us").to_list()
        for name, column in zip(names, columns, strict=True)
    }
    await session.execute(
        _WRITE_STATE, {"store_ids": stores["store_id"].to_list(), **values, "now": now}
    )


async def clear_changes(session: AsyncSession, covered: pl.DataFrame) -> bool:
    """Delete the changes the evaluation covered, unless changed again since; True if changes
    remain (arrived during it) for another evaluation. Flushes, never commits."""
    if covered.height:
        # Locked in store order first, as ingests lock them: no deadlock with one.
        await session.execute(
            sa.text("""
            DELETE FROM live_changes WHERE store_id IN (
                SELECT c.store_id FROM live_changes AS c
                JOIN unnest(CAST(:store_ids AS text[]), CAST(:changes AS bigint[]))
                    AS covered (store_id, change)
                    ON covered.store_id = c.store_id AND covered.change = c.change
                ORDER BY c.store_id FOR UPDATE OF c
            )
            """),
            {"store_ids": covered["store_id"].to_list(), "changes": covered["change"].to_list()},
        )
    remaining = await session.scalar(sa.select(sa.exists().select_from(LiveChange)))
    return bool(remaining)


@dataclass(frozen=True, kw_only=True, slots=True)
class DownRow:
    """A store down now, its fields named as `down_now` selects them."""

    store_id: str
    since: datetime
    latest_poll_at: datetime
    timezone_str: str | None
    """The store's zone as stored (None without a row; the name may be unknown)."""


Down = TypeVar("Down")
"""A store down now: as `down_now` reads it (`DownRow`), or as the live view shows it."""


@dataclass(frozen=True, kw_only=True, slots=True)
class DownPage(Generic[Down]):
    """The stores down now and the N they were evaluated at, as one snapshot saw them."""

    now: datetime | None
    """The N of the latest completed evaluation; None before any."""
    latest_poll_at: datetime | None
    """The latest poll of all stores (None without polls): `now` equals it once evaluation has
    caught up."""
    total: int
    stores: list[Down]


class DownQuery(TypedDict, total=False):
    """Which stores down now to read: `down_now`'s arguments, for the use cases that pass them
    on."""

    owner_id: Required[str | None]
    store_id: str | None
    offset: int
    limit: int | None


async def down_now(
    session: AsyncSession,
    *,
    owner_id: str | None,
    store_id: str | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> DownPage[DownRow]:
    """The stores down now that the owner may see (all with None), longest first, then by id:
    how many in all, the page from `offset` of at most `limit`, N and the latest poll.

    One statement, so one snapshot even in a READ COMMITTED transaction: read apart, an
    evaluation committing in between could pair the stores before it with the N after it.
    """
    where = [LiveStore.down_since.is_not(None), visible_to(owner_id, LiveStore.store_id)]
    if store_id is not None:
        where.append(LiveStore.store_id == store_id)
    header = sa.select(
        sa.select(sa.func.count())
        .select_from(LiveStore)
        .where(*where)
        .scalar_subquery()
        .label("total"),
        _latest_evaluated_now().scalar_subquery().label("now"),
        sa.select(sa.func.max(Store.latest_poll_at)).scalar_subquery().label("latest_poll_at"),
    ).subquery("header")
    page = (
        sa.select(
            LiveStore.store_id,
            LiveStore.down_since,
            LiveStore.latest_poll_at.label("store_latest_poll_at"),
            Timezone.timezone_str,
        )
        .outerjoin(Timezone, Timezone.store_id == LiveStore.store_id)
        .where(*where)
        .order_by(LiveStore.down_since, LiveStore.store_id)
        .offset(offset)
        .limit(limit)
        .subquery("page")
    )
    # One row per store of the page, or one with the header alone when the page is empty.
    rows = (
        await session.execute(
            sa.select(header, page)
            .select_from(header.outerjoin(page, sa.true()))
            .order_by(page.c.down_since, page.c.store_id)
        )
    ).all()
    first = rows[0]
    return DownPage(
        now=first.now,
        latest_poll_at=first.latest_poll_at,
        total=first.total,
        stores=[
            DownRow(
                store_id=row.store_id,
                since=row.down_since,
                latest_poll_at=row.store_latest_poll_at,
                timezone_str=row.timezone_str,
            )
            for row in rows
            if row.store_id is not None
        ],
    )


async def delete_evaluations_before(session: AsyncSession, cutoff: datetime) -> int:
    """Delete the finished evaluations created before `cutoff`, but the latest complete one
    (its N is the one the next evaluation compares with); how many."""
    latest_complete = (
        sa.select(sa.func.max(LiveEvaluation.seq))
        .where(LiveEvaluation.status == ReportStatus.complete)
        .scalar_subquery()
    )
    deleted = await session.execute(
        sa.delete(LiveEvaluation)
        .where(
            LiveEvaluation.status.not_in(_UNFINISHED),
            LiveEvaluation.created_at < cutoff,
            LiveEvaluation.seq < latest_complete,
        )
        .returning(LiveEvaluation.id)
    )
    return len(deleted.all())
