"""Work left by versions before leases and report files is made pending, to be computed again.

A report or shard left running without a lease (by a version without leases) is never taken
over by the sweep, which reads leases only; a complete report without its CSV file (completed
before report files existed) has nothing to download. Both go back to pending, their attempts
reset: the sweep queues them, and the same inputs and `now` compute the same report.

Revision ID: 1d6f0b7e4c92
Revises: 5e2a9c41d7b3
Create Date: 2026-12-06 20:30:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "1d6f0b7e4c92"
down_revision: str | Sequence[str] | None = "5e2a9c41d7b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        UPDATE report_shards SET status = 'pending', lease_owner = NULL
        WHERE status = 'running' AND lease_expires_at IS NULL
        """
    )
    op.execute(
        """
        UPDATE reports
        SET status = 'pending', attempts = 0, finished_at = NULL, error = NULL,
            lease_owner = NULL, lease_expires_at = NULL, shards_total = NULL, shards_left = NULL
        WHERE (status = 'running' AND lease_expires_at IS NULL AND shards_total IS NULL)
           OR (status = 'complete'
               AND NOT EXISTS (SELECT 1 FROM report_files WHERE report_id = reports.id))
        """
    )


def downgrade() -> None:
    """Nothing to undo: pending work is valid in every version."""
