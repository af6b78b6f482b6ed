"""Reports on a schedule: a cron expression, its zone, and when it is next due.

Revision ID: 6c1d9e8a2f47
Revises: 7c3d9e2f4a61
Create Date: 2026-12-06 22:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6c1d9e8a2f47"
down_revision: str | Sequence[str] | None = "7c3d9e2f4a61"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_schedules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("cron", sa.Text(), nullable=False),
        sa.Column("timezone", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_report_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["api_keys.id"],
            name=op.f("fk_report_schedules_created_by_api_keys"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["last_report_id"],
            ["reports.id"],
            name=op.f("fk_report_schedules_last_report_id_reports"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_schedules")),
    )
    op.create_index(
        op.f("ix_report_schedules_next_due_at"), "report_schedules", ["next_due_at"], unique=False
    )
    op.create_index(
        "ix_report_schedules_created_at_id",
        "report_schedules",
        ["created_at", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_report_schedules_created_at_id", table_name="report_schedules")
    op.drop_index(op.f("ix_report_schedules_next_due_at"), table_name="report_schedules")
    op.drop_table("report_schedules")
