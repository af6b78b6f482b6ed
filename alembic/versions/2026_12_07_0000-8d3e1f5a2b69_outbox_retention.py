"""The outbox's retention: when each event was recorded, and the indexes its deletes need.

`events.created_at` is the event's own timestamp (a loaded history's incidents are years old);
retention goes by `recorded_at`. Deleting deliveries and events cascades through their foreign
keys, which then need an index each; finished deliveries are found by `finished_at`.

Revision ID: 8d3e1f5a2b69
Revises: 9b4e2f7c1d85
Create Date: 2026-12-07 00:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8d3e1f5a2b69"
down_revision: str | Sequence[str] | None = "9b4e2f7c1d85"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing events count as recorded now: they are kept one retention from the upgrade.
    op.add_column(
        "events",
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
    )
    op.create_index("ix_webhook_deliveries_event_id", "webhook_deliveries", ["event_id"])
    op.create_index("ix_webhook_deliveries_finished_at", "webhook_deliveries", ["finished_at"])
    op.create_index("ix_webhook_attempts_delivery_id", "webhook_attempts", ["delivery_id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_attempts_delivery_id", table_name="webhook_attempts")
    op.drop_index("ix_webhook_deliveries_finished_at", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_event_id", table_name="webhook_deliveries")
    op.drop_column("events", "recorded_at")
