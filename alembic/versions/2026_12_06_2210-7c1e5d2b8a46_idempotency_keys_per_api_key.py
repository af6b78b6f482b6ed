"""Idempotency keys per API key: unique by (scope, key), the scope being the API key's id.

Reports made before keep their keys in the shared scope (authentication off), where every
key's reports used to be: with authentication required, a key's retry finds only its own.

Revision ID: 7c1e5d2b8a46
Revises: 6c1d9e8a2f47
Create Date: 2026-12-06 21:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c1e5d2b8a46"
down_revision: str | Sequence[str] | None = "6c1d9e8a2f47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHARED_SCOPE = "00000000-0000-0000-0000-000000000000"


def upgrade() -> None:
    op.add_column("reports", sa.Column("idempotency_scope", sa.Uuid(), nullable=True))
    op.execute(
        f"UPDATE reports SET idempotency_scope = '{SHARED_SCOPE}' "
        "WHERE idempotency_key IS NOT NULL"
    )
    op.drop_constraint(op.f("uq_reports_idempotency_key"), "reports", type_="unique")
    op.create_unique_constraint(
        op.f("uq_reports_idempotency_scope_idempotency_key"),
        "reports",
        ["idempotency_scope", "idempotency_key"],
    )
    op.create_check_constraint(
        op.f("ck_reports_idempotency_scoped"),
        "reports",
        "(idempotency_key IS NULL) = (idempotency_scope IS NULL)",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_reports_idempotency_scoped"), "reports", type_="check")
    op.drop_constraint(
        op.f("uq_reports_idempotency_scope_idempotency_key"), "reports", type_="unique"
    )
    # Keys of several API keys may now coincide: the oldest report keeps it.
    op.execute(
        "UPDATE reports SET idempotency_key = NULL WHERE id IN ("
        " SELECT id FROM (SELECT id, row_number() OVER ("
        "  PARTITION BY idempotency_key ORDER BY created_at, id) AS n"
        "  FROM reports WHERE idempotency_key IS NOT NULL) AS ranked WHERE n > 1)"
    )
    op.create_unique_constraint(op.f("uq_reports_idempotency_key"), "reports", ["idempotency_key"])
    op.drop_column("reports", "idempotency_scope")
