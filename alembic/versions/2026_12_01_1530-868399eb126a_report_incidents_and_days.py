"""Reports keep their incidents and daily figures, written with their rows.

Revision ID: 868399eb126a
Revises: c7c8403a2d42
Create Date: 2026-12-01 15:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "868399eb126a"
down_revision: str | Sequence[str] | None = "c7c8403a2d42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Store ids compare byte by byte on Postgres, as in Polars and SQLite (see db/models.py).
STORE_ID = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    # Primary keys in the CSVs' order: a store's rows, and the pages of a download, are ranges.
    op.create_table(
        "report_incidents",
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("store_id", STORE_ID, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("minutes", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_report_incidents_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "report_id", "store_id", "started_at", name=op.f("pk_report_incidents")
        ),
    )
    op.create_table(
        "report_days",
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("store_id", STORE_ID, nullable=False),
        # One row per store (see db/models.py): its week's hours as JSON arrays of numbers.
        sa.Column("first_date", sa.Date(), nullable=False),
        sa.Column("uptime_hours", sa.JSON(), nullable=False),
        sa.Column("downtime_hours", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_report_days_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("report_id", "store_id", name=op.f("pk_report_days")),
    )


def downgrade() -> None:
    op.drop_table("report_days")
    op.drop_table("report_incidents")
