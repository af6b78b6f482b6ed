"""Initial schema: report inputs (stores, polls, business hours, time zones) and reports.

Revision ID: b4af85d5645d
Revises:
Create Date: 2026-11-22 15:15:37.625626+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b4af85d5645d"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Store ids compare byte by byte, as in Polars (see db/models.py).
STORE_ID = sa.Text(collation="C")
POLL_STATUS = sa.Enum("active", "inactive", name="poll_status", create_constraint=True)
REPORT_STATUS = sa.Enum(
    "pending", "running", "complete", "failed", name="report_status", create_constraint=True
)
REPORT_COLUMNS = (
    "uptime_last_hour",
    "uptime_last_day",
    "uptime_last_week",
    "downtime_last_hour",
    "downtime_last_day",
    "downtime_last_week",
)


def upgrade() -> None:
    op.create_table(
        "stores",
        sa.Column("store_id", STORE_ID, nullable=False),
        sa.PrimaryKeyConstraint("store_id", name=op.f("pk_stores")),
    )
    op.create_table(
        "polls",
        sa.Column("store_id", STORE_ID, nullable=False),
        sa.Column("timestamp_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", POLL_STATUS, nullable=False),
        sa.PrimaryKeyConstraint("store_id", "timestamp_utc", "status", name=op.f("pk_polls")),
    )
    # BRIN: cheap to keep up during bulk loads (see db/models.py).
    op.create_index(
        op.f("ix_polls_timestamp_utc"), "polls", ["timestamp_utc"], postgresql_using="brin"
    )
    op.create_table(
        "business_hours",
        sa.Column("store_id", STORE_ID, nullable=False),
        sa.Column("day_of_week", sa.SmallInteger(), nullable=False),
        sa.Column("start_time_local", sa.Time(), nullable=False),
        sa.Column("end_time_local", sa.Time(), nullable=False),
        sa.PrimaryKeyConstraint(
            "store_id",
            "day_of_week",
            "start_time_local",
            "end_time_local",
            name=op.f("pk_business_hours"),
        ),
    )
    op.create_table(
        "timezones",
        sa.Column("store_id", STORE_ID, nullable=False),
        sa.Column("timezone_str", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("store_id", name=op.f("pk_timezones")),
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("status", REPORT_STATUS, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=True),
        sa.Column("now", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("row_count", sa.Integer(), nullable=True),
        sa.Column("unknown_timezones", sa.Integer(), nullable=True),
        sa.Column("ignored_polls", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_reports_idempotency_key")),
    )
    op.create_index(op.f("ix_reports_status"), "reports", ["status"])
    op.create_table(
        "report_rows",
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("store_id", STORE_ID, nullable=False),
        *(sa.Column(name, sa.Double(), nullable=False) for name in REPORT_COLUMNS),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_report_rows_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("report_id", "store_id", name=op.f("pk_report_rows")),
    )


def downgrade() -> None:
    op.drop_table("report_rows")
    op.drop_index(op.f("ix_reports_status"), table_name="reports")
    op.drop_table("reports")
    op.drop_table("timezones")
    op.drop_table("business_hours")
    op.drop_index(op.f("ix_polls_timestamp_utc"), table_name="polls")
    op.drop_table("polls")
    op.drop_table("stores")
    # Postgres keeps enum types after their tables are gone.
    bind = op.get_bind()
    REPORT_STATUS.drop(bind, checkfirst=True)
    POLL_STATUS.drop(bind, checkfirst=True)
