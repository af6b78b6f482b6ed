"""Indexes of report rows: by store (a store's history across reports), and by report, worst
weekly downtime first (a summary's worst stores, the dashboard's first page).

Revision ID: 8943dc00e1f5
Revises: 4b7e2f1a9c30
Create Date: 2026-12-06 20:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8943dc00e1f5"
down_revision: str | Sequence[str] | None = "4b7e2f1a9c30"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_report_rows_store_id", "report_rows", ["store_id"])
    op.create_index(
        "ix_report_rows_report_id_downtime_last_week",
        "report_rows",
        ["report_id", sa.text("downtime_last_week DESC"), "store_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_report_rows_report_id_downtime_last_week", table_name="report_rows")
    op.drop_index("ix_report_rows_store_id", table_name="report_rows")
