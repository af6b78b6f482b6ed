"""Business hours, time zones and store owners into the database, a frame at a time: the rows
of each store (or owner) in the file replace its stored ones."""

from dataclasses import dataclass

import polars as pl
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.live_state import mark_changed
from store_monitor.db.models import BusinessHours, StoreOwner, Timezone
from store_monitor.db.postgres import copy_in
from store_monitor.frames import BUSINESS_HOURS, OWNERS, TIMEZONES
from store_monitor.ingest.loads import IngestResult, Load, conformed, refused_values


@dataclass(frozen=True, slots=True)
class _Rows:
    received: int
    """Rows of the frame."""
    rows: pl.DataFrame
    """Those to store, each once, sorted as the primary key."""


class _ReplacingLoad(Load[_Rows]):
    """Replaces the rows of `table` of every `key` (a store, or an owner) in the file with the
    file's: a key's rows are deleted when the key first appears (unless they are the frame's
    already), so that rows of one key split over several frames all stay."""

    table: str
    schema: pl.Schema
    key = "store_id"
    changes_live_view = True
    """Whether the live view evaluates the loaded stores again (hours and zones: yes)."""

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self._keys: set[str] = set()
        self._stores: set[str] = set()

    def rows(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The frame's rows to store, sorted as the primary key."""
        return frame.unique().sort(self.schema.names())

    def prepare(self, frame: pl.DataFrame) -> _Rows:
        return _Rows(frame.height, self.rows(conformed(frame, self.schema)))

    async def add(self, prepared: _Rows) -> None:
        self.received += prepared.received
        rows = prepared.rows
        if not self._keys:
            # Two loads replacing the same stores at once would each miss the other's new rows
            # and then collide on them: loads of one table take turns (readers are not blocked).
            await self.session.execute(
                sa.text(f"LOCK TABLE {self.table} IN SHARE ROW EXCLUSIVE MODE")
            )
        keys = set(rows[self.key].to_list())
        replaced, carried = self.replaced(keys), keys & self._keys
        async with refused_values(self.table):
            stored = await self._stored(keys)
            # A key whose stored rows are the frame's keeps them: a file sent again writes
            # nothing, and leaves no dead rows behind for the reads to step over.
            kept = replaced - _differing_keys(
                rows.filter(pl.col(self.key).is_in(replaced)),
                stored.filter(pl.col(self.key).is_in(replaced)),
                self.key,
            )
            await self.session.execute(
                sa.text(f"DELETE FROM {self.table} WHERE {self.key} = ANY(CAST(:ids AS text[]))"),
                {"ids": sorted(replaced - kept)},
            )
        # What an earlier frame stored of a key counts once.
        earlier = stored.filter(pl.col(self.key).is_in(carried - replaced))
        new = rows.filter(~pl.col(self.key).is_in(kept)).join(
            earlier, on=self.schema.names(), how="anti"
        )
        async with refused_values(self.table, new):
            await copy_in(self.session, self.table, new)
        self._keys |= keys
        self._stores.update(rows["store_id"].to_list())
        self.added += rows.height - rows.join(earlier, on=self.schema.names(), how="semi").height

    async def finish(self) -> None:
        """Every frame's rows went to the table as it came; the live view evaluates the stores
        whose hours or zone changed once this transaction commits."""
        if self.changes_live_view:
            await mark_changed(self.session, sorted(self._stores))

    def replaced(self, keys: set[str]) -> set[str]:
        """The keys whose stored rows the frame's replace: those not seen in an earlier frame."""
        return keys - self._keys

    async def _stored(self, keys: set[str]) -> pl.DataFrame:
        """The stored rows of these keys."""
        columns = ", ".join(self.schema.names())
        found = await self.session.execute(
            sa.text(
                f"SELECT {columns} FROM {self.table} WHERE {self.key} = ANY(CAST(:ids AS text[]))"
            ),
            {"ids": sorted(keys)},
        )
        return pl.DataFrame([tuple(row) for row in found], schema=self.schema, orient="row")

    def result(self) -> IngestResult:
        return IngestResult(received=self.received, added=self.added, stores=len(self._stores))


def _differing_keys(rows: pl.DataFrame, stored: pl.DataFrame, key: str) -> set[str]:
    """The keys whose rows differ between the two frames (each without repeated rows)."""
    columns = rows.columns
    only_one_side = pl.concat(
        [
            rows.join(stored, on=columns, how="anti").select(key),
            stored.join(rows, on=columns, how="anti").select(key),
        ]
    )
    return set(only_one_side[key].to_list())


class HoursLoad(_ReplacingLoad):
    """Replaces the business hours (schema BUSINESS_HOURS) of every store in the file.

    A store's rows are its whole week: days without a row are closed days, so rows of an earlier
    load are never merged with the new ones. Stores not in the file keep theirs."""

    table = BusinessHours.__tablename__
    schema = BUSINESS_HOURS


class TimezonesLoad(_ReplacingLoad):
    """Replaces the time zone (schema TIMEZONES) of every store in the file; where a store has
    several rows the last one wins, as in the engine."""

    table = Timezone.__tablename__
    schema = TIMEZONES

    def rows(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.unique(subset="store_id", keep="last").sort("store_id")

    def replaced(self, keys: set[str]) -> set[str]:
        return keys  # a later row wins over one of an earlier frame too

    def result(self) -> IngestResult:
        stores = len(self._stores)
        return IngestResult(received=self.received, added=stores, stores=stores)


class OwnersLoad(_ReplacingLoad):
    """Replaces the stores of every owner in the file (schema OWNERS) with the file's; other
    owners keep theirs. `stores` counts the distinct stores of the file."""

    table = StoreOwner.__tablename__
    schema = OWNERS
    key = "owner_id"
    changes_live_view = False  # owners narrow what is shown, never what is computed
