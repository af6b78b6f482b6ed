"""A store's rows across reports are found by an index on store_id: its history.

Revision ID: 8943dc00e1f5
Revises: 5e2a9c41d7b3
Create Date: 2026-12-06 20:30:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "8943dc00e1f5"
down_revision: str | Sequence[str] | None = "5e2a9c41d7b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_report_rows_store_id", "report_rows", ["store_id"])


def downgrade() -> None:
    op.drop_index("ix_report_rows_store_id", table_name="report_rows")
