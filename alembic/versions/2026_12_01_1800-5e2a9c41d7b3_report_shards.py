"""Reports too large for one job are computed in shards of contiguous store ranges.

Revision ID: 5e2a9c41d7b3
Revises: 9f0b3de919f9
Create Date: 2026-12-01 18:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "5e2a9c41d7b3"
down_revision: str | Sequence[str] | None = "9f0b3de919f9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The type exists since the initial schema: the shards' statuses are the reports'.
REPORT_STATUS = postgresql.ENUM(
    "pending", "running", "complete", "failed", name="report_status", create_type=False
)


def upgrade() -> None:
    op.add_column("reports", sa.Column("shards_total", sa.Integer(), nullable=True))
    op.add_column("reports", sa.Column("shards_left", sa.Integer(), nullable=True))
    op.create_table(
        "report_shards",
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("first_store", sa.Text(collation="C"), nullable=True),
        sa.Column("end_store", sa.Text(collation="C"), nullable=True),
        sa.Column("status", REPORT_STATUS, nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("row_count", sa.Integer(), nullable=True),
        sa.Column("incident_count", sa.Integer(), nullable=True),
        sa.Column("unknown_timezones", sa.Integer(), nullable=True),
        sa.Column("ignored_polls", sa.Integer(), nullable=True),
        sa.Column("csv", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_report_shards_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("report_id", "shard", name=op.f("pk_report_shards")),
    )
    # A part of a CSV is read once, whole: Postgres's own compression would only cost time.
    op.execute("ALTER TABLE report_shards ALTER COLUMN csv SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("report_shards")
    op.drop_column("reports", "shards_left")
    op.drop_column("reports", "shards_total")
