"""Live state: each store's announced state and down-now fields, the stores changed since the
last evaluation, and the evaluations themselves as leased work.

Revision ID: 6c2d9a8e1f47
Revises: 7c1e5d2b8a46
Create Date: 2026-12-06 21:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "6c2d9a8e1f47"
down_revision: str | Sequence[str] | None = "7c1e5d2b8a46"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STORE_ID = sa.Text(collation="C")
# The type exists since the initial schema: an evaluation's statuses are a report's.
REPORT_STATUS = postgresql.ENUM(
    "pending", "running", "complete", "failed", name="report_status", create_type=False
)
INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "live_stores",
        sa.Column("store_id", STORE_ID, nullable=False),
        sa.Column("threshold", INSTANT, nullable=False),
        sa.Column("announced_started_at", INSTANT, nullable=True),
        sa.Column("down_since", INSTANT, nullable=True),
        sa.Column("latest_poll_at", INSTANT, nullable=False),
        sa.Column("evaluated_now", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("store_id", name=op.f("pk_live_stores")),
    )
    # `GET /live` lists the stores down now, longest first.
    op.create_index(
        "ix_live_stores_down_since",
        "live_stores",
        ["down_since", "store_id"],
        postgresql_where=sa.text("down_since IS NOT NULL"),
    )
    op.create_table(
        "live_changes",
        sa.Column("store_id", STORE_ID, nullable=False),
        sa.Column("change", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("store_id", name=op.f("pk_live_changes")),
    )
    op.execute("CREATE SEQUENCE live_change_seq")
    op.create_table(
        "live_evaluations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("status", REPORT_STATUS, nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_expires_at", INSTANT, nullable=True),
        sa.Column("started_at", INSTANT, nullable=True),
        sa.Column("finished_at", INSTANT, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("now", INSTANT, nullable=True),
        sa.Column("stores_evaluated", sa.Integer(), nullable=True),
        sa.Column("events", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_evaluations")),
        sa.UniqueConstraint("seq", name=op.f("uq_live_evaluations_seq")),
    )
    # The unfinished evaluations, which the claim's "no earlier one unfinished" looks up.
    op.create_index(
        "ix_live_evaluations_unfinished",
        "live_evaluations",
        ["seq"],
        postgresql_where=sa.text("status IN ('pending', 'running')"),
    )


def downgrade() -> None:
    op.drop_table("live_evaluations")
    op.execute("DROP SEQUENCE live_change_seq")
    op.drop_table("live_changes")
    op.drop_table("live_stores")
