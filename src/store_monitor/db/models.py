"""SQLAlchemy tables of the service: the report inputs (stores, polls, hours, zones), reports
(their rows, incidents and days) and the schedules that create them, keys and dashboard
sessions, the live view's state, and the events outbox with its webhook deliveries.

The schema itself is built by Alembic (`alembic/versions/`); these models must match it.
"""

# long: the whole schema, one short class per table, read beside the migrations; split, the
# tables' foreign keys and shared column types would cross modules for no gain.

import uuid
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo

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

# Store ids compare byte by byte, as in Polars: indexes then serve `ORDER BY store_id` in the
# report's order, and memcmp keeps index maintenance cheap.
StoreId: Final = sa.Text(collation="C")


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A time-zone-aware UTC instant: naive datetimes are refused, results come back in UTC."""

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
        return value.astimezone(UTC)


class PollStatus(StrEnum):
    # Declaration order is the Postgres enum's sort order: inactive after active, so that
    # "latest poll, inactive wins a tie" is `ORDER BY timestamp_utc DESC, status DESC`.
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
    # Half of each page free: a load's update of a store's latest poll stays on its page (a HOT
    # update, no new index entry), so reads do not step over dead versions between vacuums.
    __table_args__ = {"postgresql_with": {"fillfactor": 50}}  # noqa: RUF012

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


class StoreHoursVersion(Base):
    """One row: the id of the latest transaction that wrote `business_hours` or `timezones`
    (set by a trigger, see its migration), so that a reader can tell its copy of them is
    current."""

    __tablename__ = "store_hours_version"
    __table_args__ = (sa.CheckConstraint("one", name="one"),)

    one: Mapped[bool] = mapped_column(primary_key=True, server_default=sa.true())
    version: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")


def _utcnow() -> datetime:
    return datetime.now(UTC)


SHARED_IDEMPOTENCY_SCOPE: Final = uuid.UUID(int=0)
"""The idempotency scope of requests made without an API key (authentication off): one for all."""


class LeasedWork:
    """The lease columns of a table of leased work (see `store_monitor.work`): a report, a
    shard of one, a live evaluation, a webhook delivery."""

    status: Mapped[ReportStatus] = mapped_column(
        _enum(ReportStatus, "report_status"), default=ReportStatus.pending
    )
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    """Attempts started so far; the running attempt's number, which fences its writes."""
    lease_owner: Mapped[str | None] = mapped_column(sa.Text)
    """The runner making the running attempt (`host:pid:token`)."""
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """Until when the running attempt holds the work; renewed by its runner's heartbeat,
    after it any runner's sweep takes the work over with a new attempt."""
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    error: Mapped[str | None] = mapped_column(sa.Text)


class Report(LeasedWork, Base):
    __tablename__ = "reports"
    # Newest first, with the id to break ties: the order of `GET /reports` and its cursor.
    __table_args__ = (
        sa.Index("ix_reports_created_at_id", "created_at", "id"),
        # An idempotency key names one report per API key: another key's same string is its own.
        sa.UniqueConstraint("idempotency_scope", "idempotency_key"),
        sa.CheckConstraint(
            "(idempotency_key IS NULL) = (idempotency_scope IS NULL)", name="idempotency_scoped"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    # `LeasedWork.status`, indexed here: reports are listed and counted by status.
    status: Mapped[ReportStatus] = mapped_column(
        _enum(ReportStatus, "report_status"), index=True, default=ReportStatus.pending
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_utcnow)
    as_of: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """The `as_of` the report was asked for; None means "at the latest poll"."""
    now: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """The instant the windows end at, once resolved; None if there were no polls at all."""
    row_count: Mapped[int | None] = mapped_column(sa.Integer)
    unknown_timezones: Mapped[int | None] = mapped_column(sa.Integer)
    ignored_polls: Mapped[int | None] = mapped_column(sa.Integer)
    incident_count: Mapped[int | None] = mapped_column(sa.Integer)
    """The report's incidents, all stores together; None until it is complete."""
    idempotency_key: Mapped[str | None] = mapped_column(sa.Text)
    idempotency_scope: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    """Whose `idempotency_key` it is: the API key's id (kept when the key is revoked: ids are
    never reused), or `SHARED_IDEMPOTENCY_SCOPE` with authentication off; set with the key."""
    request_id: Mapped[str | None] = mapped_column(sa.Text)
    """The `X-Request-ID` of the request that created the report; its job logs under it."""
    shards_total: Mapped[int | None] = mapped_column(sa.Integer)
    """The shards the report is computed in (see `ReportShard`); None until it is planned,
    and for a report computed in one job until it is complete (then 1)."""
    shards_left: Mapped[int | None] = mapped_column(sa.Integer)
    """Shards not yet complete: each finishing shard decrements it, and the one that brings it
    to zero completes the report."""

    @property
    def shards_done(self) -> int | None:
        """Shards complete, the report's progress with `shards_total`; None until planned."""
        if self.shards_total is None:
            return None
        return self.shards_total - (self.shards_left or 0)


class ReportShard(LeasedWork, Base):
    """One shard of a report too large for one job: a contiguous range of store ids, in the
    report's order, computed by a job of its own under a lease of its own, as a report is."""

    __tablename__ = "report_shards"

    report_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey(Report.id, ondelete="CASCADE"), primary_key=True
    )
    shard: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    """1, 2, ...: the shards' rows concatenate in this order into the report's."""
    first_store: Mapped[str | None] = mapped_column(StoreId)
    """The range's first store id (included); None: from the first of all."""
    end_store: Mapped[str | None] = mapped_column(StoreId)
    """The store id the range ends before (excluded); None: to the last of all."""
    row_count: Mapped[int | None] = mapped_column(sa.Integer)
    incident_count: Mapped[int | None] = mapped_column(sa.Integer)
    unknown_timezones: Mapped[int | None] = mapped_column(sa.Integer)
    ignored_polls: Mapped[int | None] = mapped_column(sa.Integer)
    csv: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    """The shard's part of the report's CSV (no header), until the report's file is made."""


class ReportRow(Base):
    """One store's line of a report; the columns are the report's, in the same units."""

    __tablename__ = "report_rows"
    __table_args__ = (
        # A store's rows across reports (its history) without reading every report's rows.
        sa.Index("ix_report_rows_store_id", "store_id"),
        # A report's stores worst first (a summary's worst five, the dashboard's first page)
        # read from the index's start instead of sorting all of them.
        sa.Index(
            "ix_report_rows_report_id_downtime_last_week",
            "report_id",
            sa.text("downtime_last_week DESC"),
            "store_id",
        ),
    )

    # No foreign key: see `db.report_results`.
    report_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    store_id: Mapped[str] = mapped_column(StoreId, primary_key=True)
    uptime_last_hour: Mapped[float] = mapped_column(sa.Double)
    uptime_last_day: Mapped[float] = mapped_column(sa.Double)
    uptime_last_week: Mapped[float] = mapped_column(sa.Double)
    downtime_last_hour: Mapped[float] = mapped_column(sa.Double)
    downtime_last_day: Mapped[float] = mapped_column(sa.Double)
    downtime_last_week: Mapped[float] = mapped_column(sa.Double)
    # Not in the CSV: for the dashboard, which sorts a report's stores by them.
    incidents_last_day: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    """The store's incidents that overlap the last day for a positive time."""
    incidents_last_week: Mapped[int] = mapped_column(sa.Integer, server_default="0")


class KeyScope(StrEnum):
    """What a key may do; an owner key has no scope but an owner (see `store_monitor.access`)."""

    admin = "admin"
    ingest = "ingest"
    reports = "reports"
    metrics = "metrics"


class ApiKey(Base):
    """An API key: only its keyed hash is stored, never the secret itself."""

    __tablename__ = "api_keys"
    __table_args__ = (
        # A key acts either with a scope or for an owner, never both and never neither.
        sa.CheckConstraint("(scope IS NULL) <> (owner_id IS NULL)", name="scope_or_owner"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(sa.Text, unique=True)
    prefix: Mapped[str] = mapped_column(sa.Text)
    """The secret's first characters (`sm_` and 8 more): to tell keys apart in lists and logs."""
    secret_hash: Mapped[bytes] = mapped_column(sa.LargeBinary, unique=True)
    """HMAC-SHA256 of the secret under the server's secret key: the look-up key."""
    scope: Mapped[KeyScope | None] = mapped_column(_enum(KeyScope, "key_scope"))
    owner_id: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """Recorded at most about once a minute per key, not on every request."""


class DashboardSession(Base):
    """A dashboard sign-in of a key, until it signs out or expires: the cookie carries its token,
    only the token's hash is stored, and every request looks it up, so ending it is immediate."""

    __tablename__ = "dashboard_sessions"

    token_hash: Mapped[bytes] = mapped_column(sa.LargeBinary, primary_key=True)
    key_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey(ApiKey.id, ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class StoreOwner(Base):
    """A store belongs to an owner; a store may have several owners (franchisee and brand)."""

    __tablename__ = "store_owners"

    owner_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    store_id: Mapped[str] = mapped_column(StoreId, primary_key=True)


class ReportIncident(Base):
    """One incident of a report: a stretch of business time a store was inactive in the week."""

    __tablename__ = "report_incidents"

    # The key's order is the CSV's (store_id, then started_at), and its prefix finds a store's.
    # No foreign key: see `db.report_results`.
    report_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    store_id: Mapped[str] = mapped_column(StoreId, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    ended_at: Mapped[datetime] = mapped_column(UtcDateTime)
    minutes: Mapped[float] = mapped_column(sa.Double)


class ReportDay(Base):
    """One store's daily figures in a report: its local dates of the week, in hours.

    One row per store, not per date: a report has eight times fewer rows to write (each costs
    Postgres a key check), and a store's week is read whole. The dates are consecutive.
    """

    __tablename__ = "report_days"

    # No foreign key: see `db.report_results`.
    report_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    store_id: Mapped[str] = mapped_column(StoreId, primary_key=True)
    first_date: Mapped[date] = mapped_column(sa.Date)
    """The store's first local date in the week; the i-th figure is of `first_date + i days`."""
    uptime_hours: Mapped[list[float]] = mapped_column(sa.JSON)
    downtime_hours: Mapped[list[float]] = mapped_column(sa.JSON)


class ReportFile(Base):
    """A finished report's file, kept gzip-compressed: written in the transaction that completes
    the report and never changed after, so downloads serve it as it is stored."""

    __tablename__ = "report_files"

    report_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey(Report.id, ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    """Which file of the report: `report` is its CSV (see `db.report_files`)."""
    sha256: Mapped[str] = mapped_column(sa.Text)
    """Hex digest of the uncompressed bytes: the download's ETag."""
    size: Mapped[int] = mapped_column(sa.BigInteger)
    """Uncompressed bytes."""
    rows: Mapped[int] = mapped_column(sa.Integer)
    """Data rows, the header not counted."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_utcnow)
    # Deferred: a conditional request (ETag) needs the digest only, not the content.
    gzip: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
    """The file's bytes as one gzip member."""


class Event(Base):
    """The outbox: an event to announce (a webhook body), written in the transaction that changed
    the state it announces, so a crash between the two loses nothing; delivered after commit."""

    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    """The order events were written in: readers of the outbox follow it."""
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, default=uuid.uuid4, unique=True)
    """The event's identity: its `webhook-id` (`webhooks.events.event_id`), the same on every
    delivery attempt."""
    type: Mapped[str] = mapped_column(sa.Text)
    """One of `webhooks.events.EventType`."""
    store_id: Mapped[str | None] = mapped_column(StoreId)
    """The store an incident event is about (owner keys see their stores' only); None for a
    report's events."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_utcnow)
    """The event's own timestamp (an incident's of a loaded history may be years old)."""
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=sa.func.now())
    """When it entered the outbox: what its retention goes by (`webhooks.retention`)."""
    body: Mapped[bytes] = mapped_column(sa.LargeBinary)
    """The exact JSON bytes sent and signed (`webhooks.events.event_body`)."""


class ReportSchedule(Base):
    """Reports on a schedule: a cron expression in a time zone (see `store_monitor.schedules`).

    `next_due_at` is the first fire time after `last_fired_at` (or `created_at`), on the
    database's clock: the sweep claims the rows where it has passed (`ix_..._next_due_at`)."""

    __tablename__ = "report_schedules"
    # Newest first, with the id to break ties: the order of `GET /schedules` and its cursor.
    __table_args__ = (sa.Index("ix_report_schedules_created_at_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    cron: Mapped[str] = mapped_column(sa.Text)
    """Five fields, single spaces between them (as `schedules.cron.parse_schedule` makes it)."""
    timezone: Mapped[str] = mapped_column(sa.Text)
    """The IANA zone the cron expression is evaluated in."""
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey(ApiKey.id, ondelete="SET NULL")
    )
    """The API key that created the schedule; None with authentication off."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    next_due_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    last_fired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_report_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey(Report.id, ondelete="SET NULL")
    )
    """The report the last fire created; None once retention (or a client) deleted it."""

    @property
    def next_due_local(self) -> datetime:
        """`next_due_at` in the schedule's own zone, with its UTC offset."""
        return self.next_due_at.astimezone(ZoneInfo(self.timezone))


class LiveStore(Base):
    """What the live view announced of a store, and whether it is down now, as of the last
    evaluation that covered it (see `store_monitor.engine.live` for the rules)."""

    __tablename__ = "live_stores"
    __table_args__ = (
        sa.Index(
            "ix_live_stores_down_since",
            "down_since",
            "store_id",
            postgresql_where=sa.text("down_since IS NOT NULL"),
        ),
        # Every row is rewritten at every hourly evaluation: with half of each page free, that
        # is a heap-only update (no index entry added) rather than a new tuple elsewhere.
        {"postgresql_with": {"fillfactor": 50}},
    )

    store_id: Mapped[str] = mapped_column(StoreId, primary_key=True)
    threshold: Mapped[datetime] = mapped_column(UtcDateTime)
    """Incidents ending at or before this were announced already, or are too old to be."""
    announced_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """The start of the incident announced opened and not yet closed."""
    down_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """Where the store's ongoing incident began; None when it is not down now."""
    latest_poll_at: Mapped[datetime] = mapped_column(UtcDateTime)
    evaluated_now: Mapped[datetime] = mapped_column(UtcDateTime)
    """The N of the evaluation that wrote this row."""


LIVE_CHANGE_SEQ: Final = sa.Sequence("live_change_seq", metadata=Base.metadata)
"""Numbers each ingest's changes (`LiveChange.change`)."""


class LiveChange(Base):
    """A store whose polls, hours or zone changed since an evaluation last covered it: written
    by the ingest in its own transaction, deleted by the evaluation that covers that change."""

    __tablename__ = "live_changes"

    store_id: Mapped[str] = mapped_column(StoreId, primary_key=True)
    change: Mapped[int] = mapped_column(sa.BigInteger)
    """From `live_change_seq`, new at every ingest: an evaluation deletes the row only if it
    is still the change it read, so a change arriving during it is kept."""


class LiveEvaluation(LeasedWork, Base):
    """One evaluation of the live view, as leased work. Evaluations run one at a time, in the
    order of `seq`: one is claimed only once every earlier one is finished."""

    __tablename__ = "live_evaluations"
    __table_args__ = (
        sa.Index(
            "ix_live_evaluations_unfinished",
            "seq",
            postgresql_where=sa.text("status IN ('pending', 'running')"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    """Names its jobs: unique across databases, so that job ids never collide in a shared
    Redis (Arq refuses a job whose id it still holds)."""
    seq: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), unique=True)
    """The order evaluations run in."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_utcnow)
    now: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """The N it evaluated at: the latest poll of all stores it saw; None with no polls."""
    stores_evaluated: Mapped[int | None] = mapped_column(sa.Integer)
    events: Mapped[int | None] = mapped_column(sa.Integer)
    """`incident.opened` and `incident.closed` events it recorded."""


class WebhookSubscription(Base):
    """Where to send which events, for whom: made by a key, seen and deleted by it (or admin)."""

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (
        sa.CheckConstraint(
            "(previous_secret IS NULL) = (previous_secret_until IS NULL)",
            name="previous_secret_has_an_end",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    url: Mapped[str] = mapped_column(sa.Text)
    secret: Mapped[str] = mapped_column(sa.Text)
    """`whsec_...`, stored as is: every delivery is signed with it. Never listed."""
    previous_secret: Mapped[str | None] = mapped_column(sa.Text)
    """The secret before the last rotation: deliveries are signed with it too until
    `previous_secret_until`, so that receivers can switch without refusing events."""
    previous_secret_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    events: Mapped[list[str]] = mapped_column(sa.ARRAY(sa.Text))
    store_ids: Mapped[list[str] | None] = mapped_column(sa.ARRAY(StoreId))
    """Only these stores' incident events; None: every store the key may see."""
    key_name: Mapped[str | None] = mapped_column(sa.Text, index=True)
    """The key that made it (None with authentication off): it alone (and admin) sees it."""
    owner_id: Mapped[str | None] = mapped_column(sa.Text)
    """Set for an owner key's subscription: incident events of the owner's stores only."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_utcnow)
    failing_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """The first failed attempt since the last success; None while deliveries succeed."""
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(sa.Text)

    @property
    def enabled(self) -> bool:
        """Whether events are sent to it: not disabled."""
        return self.disabled_at is None


class WebhookDelivery(LeasedWork, Base):
    """One event to one subscription: leased work (see `store_monitor.work`), each attempt a
    POST; a failed one makes it pending again, due after the backoff."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.Index("ix_webhook_deliveries_due", "status", "due_at"),
        # Retention: finished deliveries by age, and the deliveries of a deleted event.
        sa.Index("ix_webhook_deliveries_finished_at", "finished_at"),
        sa.Index("ix_webhook_deliveries_event_id", "event_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey(WebhookSubscription.id, ondelete="CASCADE"), index=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey(Event.id, ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_utcnow)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_utcnow)
    """When the next attempt may start (after a failed one: its backoff)."""


class WebhookAttempt(Base):
    """One POST of a delivery, as `GET /webhooks/{id}/deliveries` lists it."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        sa.Index("ix_webhook_attempts_subscription_seq", "subscription_id", "seq"),
        # A deleted delivery's attempts go with it.
        sa.Index("ix_webhook_attempts_delivery_id", "delivery_id"),
    )

    seq: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey(WebhookSubscription.id, ondelete="CASCADE")
    )
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey(WebhookDelivery.id, ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    event_type: Mapped[str] = mapped_column(sa.Text)
    attempt: Mapped[int] = mapped_column(sa.Integer)
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status_code: Mapped[int | None] = mapped_column(sa.Integer)
    error: Mapped[str | None] = mapped_column(sa.Text)
    duration_ms: Mapped[float] = mapped_column(sa.Float)
