"""A webhook's previous secret, and until when it still signs: rotating a secret keeps the old
one signing beside the new for a while, so that receivers can switch without losing events.

Revision ID: 5e8a1c3f9d24
Revises: 3f7a9c2e5b18
Create Date: 2026-12-07 17:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e8a1c3f9d24"
down_revision: str | Sequence[str] | None = "3f7a9c2e5b18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("webhook_subscriptions", sa.Column("previous_secret", sa.Text(), nullable=True))
    op.add_column(
        "webhook_subscriptions",
        sa.Column("previous_secret_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_check_constraint(
        op.f("ck_webhook_subscriptions_previous_secret_has_an_end"),
        "webhook_subscriptions",
        "(previous_secret IS NULL) = (previous_secret_until IS NULL)",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("ck_webhook_subscriptions_previous_secret_has_an_end"),
        "webhook_subscriptions",
        type_="check",
    )
    op.drop_column("webhook_subscriptions", "previous_secret_until")
    op.drop_column("webhook_subscriptions", "previous_secret")
