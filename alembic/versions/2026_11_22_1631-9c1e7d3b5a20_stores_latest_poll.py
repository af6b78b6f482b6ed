"""Stores remember the instant of their latest poll: a report's `now` without a pass over polls.

Revision ID: 9c1e7d3b5a20
Revises: 5d4860f7a9c8
Create Date: 2026-11-22 16:31:09.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9c1e7d3b5a20"
down_revision: str | Sequence[str] | None = "5d4860f7a9c8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("stores", sa.Column("latest_poll_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE stores SET latest_poll_at = "
        "(SELECT max(polls.timestamp_utc) FROM polls WHERE polls.store_id = stores.store_id)"
    )


def downgrade() -> None:
    op.drop_column("stores", "latest_poll_at")
