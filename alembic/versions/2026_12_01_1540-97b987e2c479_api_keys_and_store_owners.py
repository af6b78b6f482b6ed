"""API keys (only a keyed hash of each secret) and the stores each owner may see.

Revision ID: 97b987e2c479
Revises: 868399eb126a
Create Date: 2026-12-01 15:40:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "97b987e2c479"
down_revision: str | Sequence[str] | None = "868399eb126a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STORE_ID = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
KEY_SCOPE = sa.Enum(
    "admin", "ingest", "reports", "metrics", name="key_scope", create_constraint=True
)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(), nullable=False),
        sa.Column("scope", KEY_SCOPE, nullable=True),
        sa.Column("owner_id", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(scope IS NULL) <> (owner_id IS NULL)", name=op.f("ck_api_keys_scope_or_owner")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_api_keys_secret_hash")),
    )
    op.create_table(
        "store_owners",
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("store_id", STORE_ID, nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "store_id", name=op.f("pk_store_owners")),
    )


def downgrade() -> None:
    op.drop_table("store_owners")
    op.drop_table("api_keys")
    # Postgres keeps enum types after their tables are gone.
    KEY_SCOPE.drop(op.get_bind(), checkfirst=True)
