"""Reports remember the request id of the request that created them, for their job's logs.

Revision ID: 5d4860f7a9c8
Revises: b4af85d5645d
Create Date: 2026-11-22 16:01:26.512380+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d4860f7a9c8"
down_revision: str | Sequence[str] | None = "b4af85d5645d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("reports", sa.Column("request_id", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("reports", "request_id")
