"""Stores keep half of each page free: the update of a store's latest poll, which every load of
its polls makes, then stays on its page (a HOT update) and adds no entry to the primary key, so
the reads of `stores` do not step over dead versions between vacuums.

Rows already stored move to such pages as they are next updated or the table is rewritten.

Revision ID: 8e4b1c7d2f90
Revises: 6c2d9e8f1a47
Create Date: 2026-12-06 23:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "8e4b1c7d2f90"
down_revision: str | Sequence[str] | None = "6c2d9e8f1a47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE stores SET (fillfactor = 50)")


def downgrade() -> None:
    op.execute("ALTER TABLE stores RESET (fillfactor)")
