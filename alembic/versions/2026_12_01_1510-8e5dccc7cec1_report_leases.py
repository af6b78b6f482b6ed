"""Reports being computed hold a lease (owner, expiry) that a live worker can take over; reports
are listed newest first and deleted by age, by their creation instant.

Revision ID: 8e5dccc7cec1
Revises: 9c1e7d3b5a20
Create Date: 2026-12-01 15:10:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8e5dccc7cec1"
down_revision: str | Sequence[str] | None = "9c1e7d3b5a20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE on both dialects, as in the revisions before: no batch copy of the table.


def upgrade() -> None:
    op.add_column("reports", sa.Column("lease_owner", sa.Text(), nullable=True))
    op.add_column(
        "reports", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index("ix_reports_created_at_id", "reports", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_reports_created_at_id", table_name="reports")
    op.drop_column("reports", "lease_expires_at")
    op.drop_column("reports", "lease_owner")
