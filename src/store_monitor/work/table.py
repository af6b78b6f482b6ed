"""A table of leased work, and the fenced writes every attempt at a row of it makes.

A work table's model has the lease columns (`db.models.LeasedWork`) and its primary key is the
work's key; its users give only what is theirs: which rows are in play (`waiting`, `alive`),
what failing a row does beyond the row (`on_fail`).
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from store_monitor.db.models import LeasedWork, ReportStatus
from store_monitor.work.lease import (
    Runner,
    claimed_values,
    db_clock,
    failed_values,
    given_back_values,
    renewed_values,
)

log = logging.getLogger(__name__)

Key = tuple[UUID | int | str, ...]
"""A row's key values, in the order of `WorkTable.key`."""
BoundKey = Key | tuple[sa.BindParameter[Any], ...]
"""A key, or the parameters a statement built once binds it to."""
Condition = Callable[[], sa.ColumnElement[bool]]
OnFail = Callable[[AsyncSession, Key, str], Awaitable[None]]
"""What failing a row does beyond it, in the same transaction (say, fail its report)."""


def key_id(key: Key) -> UUID:
    """The id that leads every work table's key: a report's (a shard's too), an evaluation's, a
    delivery's."""
    leading = key[0]
    assert isinstance(leading, UUID)
    return leading


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkTable:
    kind: str
    """The name of the job that makes an attempt at a row (its Arq function name)."""
    model: type[LeasedWork]
    noun: str
    """What the logs call a row, before its key's first value: `report <id>`, and for a
    longer key its other columns by name: `report <id>, shard <n>`."""
    order_by: tuple[sa.ColumnElement[Any] | InstrumentedAttribute[Any], ...]
    """The order the sweep queues attempts in."""
    waiting: Condition | None = None
    """Beyond its own columns, when a row may be claimed or swept (say, its report running)."""
    alive: Condition | None = None
    """Beyond its own columns, when a held row's lease may be renewed."""
    on_fail: OnFail | None = None

    @property
    def key(self) -> tuple[sa.Column[Any], ...]:
        """The columns of a row's key: its primary key's."""
        return tuple(sa.inspect(self.model).primary_key)

    def label(self, key: Key) -> str:
        """What the logs call the row keyed `key` (see `noun`)."""
        names = [self.noun, *(column.name for column in self.key[1:])]
        return ", ".join(f"{name} {value}" for name, value in zip(names, key, strict=True))

    def where(self, key: BoundKey) -> tuple[sa.ColumnElement[bool], ...]:
        return tuple(column == value for column, value in zip(self.key, key, strict=True))

    def needs_attempt(self) -> sa.ColumnElement[bool]:
        """Rows waiting for an attempt: pending, or running under a lease that ran out."""
        model = self.model
        needs = sa.or_(
            model.status == ReportStatus.pending,
            sa.and_(model.status == ReportStatus.running, model.lease_expires_at < db_clock()),
        )
        return needs if self.waiting is None else sa.and_(needs, self.waiting())

    def held(
        self, key: BoundKey, attempt: int | sa.BindParameter[int]
    ) -> tuple[sa.ColumnElement[bool], ...]:
        """The fence of every write of an attempt: its row still running as that attempt."""
        model = self.model
        return (*self.where(key), model.attempts == attempt, model.status == ReportStatus.running)


async def fail(
    sessionmaker: async_sessionmaker[AsyncSession],
    table: WorkTable,
    key: Key,
    reason: str,
    *fence: sa.ColumnElement[bool],
) -> bool:
    """Fail the row with `reason` if `fence` holds, and run the table's `on_fail` in the same
    transaction; False if nothing changed."""
    async with sessionmaker.begin() as session:
        failed = await session.execute(
            sa.update(table.model)
            .where(*table.where(key), *fence)
            .values(failed_values(reason))
            .returning(sa.literal(True))
        )
        if failed.one_or_none() is None:
            return False
        if table.on_fail is not None:
            await table.on_fail(session, key, reason)
    return True


@dataclass(frozen=True, slots=True)
class Hold:
    """Attempt `number` at one row of a table, run by `runner`: its claim and fenced writes."""

    sessionmaker: async_sessionmaker[AsyncSession]
    table: WorkTable
    key: Key
    number: int
    runner: Runner

    @property
    def label(self) -> str:
        return self.table.label(self.key)

    def fence(self) -> tuple[sa.ColumnElement[bool], ...]:
        return self.table.held(self.key, self.number)

    async def claim(self, *returning: Any) -> Any:
        """Make the row running as this attempt, leased to the runner, and read `returning`
        from it (a row); None if the row is not waiting for this attempt (made already, taken by
        another, or deleted), or the attempt is past the runner's last."""
        if self.number > self.runner.max_attempts:
            return None
        model = self.table.model
        # One UPDATE, no read before it: the conditions are checked on the rows it locks.
        async with self.sessionmaker.begin() as session:
            claimed = await session.execute(
                sa.update(model)
                .where(
                    *self.table.where(self.key),
                    # Not only `number - 1`: an attempt whose runner died before its claim is
                    # skipped (see `store_monitor.work.sweep.next_attempt`).
                    model.attempts < self.number,
                    self.table.needs_attempt(),
                )
                .values(claimed_values(self.runner, self.number))
                .returning(*returning)
            )
            return claimed.one_or_none()

    async def renew(self) -> bool:
        alive = () if self.table.alive is None else (self.table.alive(),)
        async with self.sessionmaker.begin() as session:
            renewed = await session.execute(
                sa.update(self.table.model)
                .where(*self._owned(), *alive)
                .values(renewed_values(self.runner))
                .returning(sa.literal(True))
            )
            return renewed.one_or_none() is not None

    async def give_back(self, reason: str) -> None:
        async with self.sessionmaker.begin() as session:
            await session.execute(
                sa.update(self.table.model).where(*self._owned()).values(given_back_values(reason))
            )

    async def fail(self, reason: str) -> bool:
        return await fail(self.sessionmaker, self.table, self.key, reason, *self.fence())

    def _owned(self) -> tuple[sa.ColumnElement[bool], ...]:
        return (*self.fence(), self.table.model.lease_owner == self.runner.owner)
