"""Reports count their incidents, in all and per store over the last day and week.

Revision ID: 9f0b3de919f9
Revises: 3a03ad6a5132
Create Date: 2026-12-01 17:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9f0b3de919f9"
down_revision: str | Sequence[str] | None = "3a03ad6a5132"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("reports", sa.Column("incident_count", sa.Integer(), nullable=True))
    # Stored with the rows (not counted when a page is read) so that the dashboard can sort a
    # report's stores by them; rows of earlier reports had no incidents counted: zero.
    for name in ("incidents_last_day", "incidents_last_week"):
        op.add_column(
            "report_rows",
            sa.Column(name, sa.Integer(), nullable=False, server_default="0"),
        )


def downgrade() -> None:
    op.drop_column("report_rows", "incidents_last_week")
    op.drop_column("report_rows", "incidents_last_day")
    op.drop_column("reports", "incident_count")
