"""The events outbox: what is to be announced, written with the state that produced it.

Revision ID: 4b7e2f1a9c30
Revises: 1d6f0b7e4c92
Create Date: 2026-12-06 21:10:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4b7e2f1a9c30"
down_revision: str | Sequence[str] | None = "1d6f0b7e4c92"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STORE_ID = sa.Text(collation="C")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("seq", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("store_id", STORE_ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
        sa.UniqueConstraint("id", name=op.f("uq_events_id")),
    )


def downgrade() -> None:
    op.drop_table("events")
