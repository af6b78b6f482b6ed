"""Live state rows leave half of each page free: the hourly rewrite of every store's row is then
a heap-only update (no index entry to add), about twice as fast.

Revision ID: 8d4e2a7c9b15
Revises: 8d3e1f5a2b69
Create Date: 2026-12-06 23:30:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "8d4e2a7c9b15"
down_revision: str | Sequence[str] | None = "8d3e1f5a2b69"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE live_stores SET (fillfactor = 50)")


def downgrade() -> None:
    op.execute("ALTER TABLE live_stores RESET (fillfactor)")
