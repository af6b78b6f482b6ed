"""SQLAlchemy tables of the service: the report inputs (stores, polls, hours, zones) and reports.

The schema itself is built by Alembic (`alembic/versions/`); these models must match it.
"""

import uuid
from datetime import UTC, datetime, time
from enum import StrEnum
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION: Final = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Store ids compare byte by byte on Postgres, as in Polars and SQLite: indexes then serve
# `ORDER BY store_id` in the report's order, and memcmp keeps index maintenance cheap.
StoreId: Final = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A time-zone-aware UTC instant on every dialect (SQLite keeps no zone: stored as UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a time-zone-aware instant")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class PollStatus(StrEnum):
    # Declaration order is the Postgres enum's sort order: inactive after active, so that
    # "latest poll, inactive wins a tie" is `ORDER BY timestamp_utc DESC, status DESC`.
    # SQLite stores the text, which sorts the same way.
    active = "active"
    inactive = "inactive"


class ReportStatus(StrEnum):
    pending = "pending"
    running = "running"
    complete = "complete"
    failed = "failed"


def _enum(enum: type[StrEnum], name: str) -> sa.Enum:
    return sa.Enum(
        enum,
        name=name,
        create_constraint=True,
        values_callable=lambda members: [member.value for member in members],
    )


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class Store(Base):
    """Every store ever seen in polls; ingest keeps it in step with `polls`."""

    __tablename__ = "stores"

    store_id: Mapped[str] = mapped_column(StoreId, primary_key=True)
    latest_poll_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """The instant of the store's latest poll (its greatest `timestamp_utc`): the latest of all
    stores is a report's default `now`, read here rather than from a pass over the polls."""
    first_poll_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """No poll of the store is earlier (its least `timestamp_utc`, or earlier once retention
    dropped old weeks): the search for its last poll before a week stops here, not at the first
    partition of all."""


class Poll(Base):
    # The primary key is the uniqueness of a poll (re-ingesting a file adds nothing) and,
    # through its (store_id, timestamp_utc) prefix, the index of each store's polls in time.
    # No foreign key to `stores`: ingest writes both, and a per-row check would slow COPY.
    __tablename__ = "polls"
    # On Postgres, one partition per week (see db/partitions.py): a time range reads only its
    # weeks' partitions, old weeks are dropped whole, and no index on timestamp_utc is needed.
    __table_args__ = {"postgresql_partition_by": "RANGE (timestamp_utc)"}  # noqa: RUF012

    store_id: Mapped[str] = mapped_column(StoreId, primary_key=True)
    timestamp_utc: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    status: Mapped[PollStatus] = mapped_column(_enum(PollStatus, "poll_status"), primary_key=True)


class BusinessHours(Base):
    """One weekly opening interval, local to the store; day_of_week 0 = Monday ... 6 = Sunday."""

    # The whole row is the key: a repeated row means nothing more (the engine merges overlaps),
    # and the store_id prefix is the index that per-store replacement deletes by.
    __tablename__ = "business_hours"

    store_id: Mapped[str] = mapped_column(StoreId, primary_key=True)
    day_of_week: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    start_time_local: Mapped[time] = mapped_column(sa.Time, primary_key=True)
    end_time_local: Mapped[time] = mapped_column(sa.Time, primary_key=True)


class Timezone(Base):
    __tablename__ = "timezones"

    store_id: Mapped[str] = mapped_column(StoreId, primary_key=True)
    # Not validated: the engine falls back to its default zone for an unknown name.
    timezone_str: Mapped[str] = mapped_column(sa.Text)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Report(Base):
    __tablename__ = "reports"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    status: Mapped[ReportStatus] = mapped_column(
        _enum(ReportStatus, "report_status"), index=True, default=ReportStatus.pending
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    as_of: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """The `as_of` the report was asked for; None means "at the latest poll"."""
    now: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """The instant the windows end at, once resolved; None if there were no polls at all."""
    error: Mapped[str | None] = mapped_column(sa.Text)
    row_count: Mapped[int | None] = mapped_column(sa.Integer)
    unknown_timezones: Mapped[int | None] = mapped_column(sa.Integer)
    ignored_polls: Mapped[int | None] = mapped_column(sa.Integer)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    idempotency_key: Mapped[str | None] = mapped_column(sa.Text, unique=True)
    request_id: Mapped[str | None] = mapped_column(sa.Text)
    """The `X-Request-ID` of the request that created the report; its job logs under it."""


class ReportRow(Base):
    """One store's line of a report; the columns are the report's, in the same units."""

    __tablename__ = "report_rows"

    report_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey(Report.id, ondelete="CASCADE"), primary_key=True
    )
    store_id: Mapped[str] = mapped_column(StoreId, primary_key=True)
    uptime_last_hour: Mapped[float] = mapped_column(sa.Double)
    uptime_last_day: Mapped[float] = mapped_column(sa.Double)
    uptime_last_week: Mapped[float] = mapped_column(sa.Double)
    downtime_last_hour: Mapped[float] = mapped_column(sa.Double)
    downtime_last_day: Mapped[float] = mapped_column(sa.Double)
    downtime_last_week: Mapped[float] = mapped_column(sa.Double)
