"""A report's rows, incidents and days without foreign keys to their report.

Postgres checks a foreign key row by row, a third of its time writing a report's results; the
fenced final write already holds the report's row locked, so every row it writes has its report.
Deleting a report deletes them explicitly (`reports.delete_report`).

Revision ID: 9b4e2f7c1d85
Revises: 8e4b1c7d2f90
Create Date: 2026-12-06 23:30:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "9b4e2f7c1d85"
down_revision: str | Sequence[str] | None = "8e4b1c7d2f90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("report_rows", "report_incidents", "report_days")


def upgrade() -> None:
    for table in TABLES:
        op.drop_constraint(f"fk_{table}_report_id_reports", table, type_="foreignkey")


def downgrade() -> None:
    for table in TABLES:
        # Rows whose report is gone would fail the constraint.
        op.execute(
            f"DELETE FROM {table} AS t "
            "WHERE NOT EXISTS (SELECT FROM reports AS r WHERE r.id = t.report_id)"
        )
        op.create_foreign_key(
            f"fk_{table}_report_id_reports",
            table,
            "reports",
            ["report_id"],
            ["id"],
            ondelete="CASCADE",
        )
