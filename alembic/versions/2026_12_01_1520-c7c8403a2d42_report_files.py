"""A finished report keeps its CSV, gzip-compressed, in one row: downloads read one value.

Revision ID: c7c8403a2d42
Revises: 8e5dccc7cec1
Create Date: 2026-12-01 15:20:00.000000+00:00

Reports completed before this revision get their file when first downloaded (built from their
rows, see `store_monitor.reports.report_download`): no backfill here, which would have to run
the application's CSV writer inside a migration.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c7c8403a2d42"
down_revision: str | Sequence[str] | None = "8e5dccc7cec1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_files",
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("gzip", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_report_files_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("report_id", "kind", name=op.f("pk_report_files")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Gzip does not compress again: EXTERNAL keeps TOAST from trying (out of line, as is).
        op.execute("ALTER TABLE report_files ALTER COLUMN gzip SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("report_files")
