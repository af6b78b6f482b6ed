"""A version of the business hours and time zones, set by every statement that writes either
table: a live runner keeps the hours it read while the version is unchanged.

A trigger rather than the ingest's code, so that no writer (a load, an operator's psql) can
change the hours without the runners seeing it. The version is the writing transaction's id,
which no other transaction ever has: not a counter, which a reset row would count again.

Revision ID: 3f7a9c2e5b18
Revises: 8d4e2a7c9b15
Create Date: 2026-12-07 01:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3f7a9c2e5b18"
down_revision: str | Sequence[str] | None = "8d4e2a7c9b15"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("business_hours", "timezones")


def upgrade() -> None:
    op.create_table(
        "store_hours_version",
        sa.Column("one", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="0", nullable=False),
        sa.CheckConstraint("one", name=op.f("ck_store_hours_version_one")),
        sa.PrimaryKeyConstraint("one", name=op.f("pk_store_hours_version")),
    )
    op.execute("INSERT INTO store_hours_version DEFAULT VALUES")
    op.execute("""
        CREATE FUNCTION raise_store_hours_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO store_hours_version (one, version)
            VALUES (true, CAST(CAST(pg_current_xact_id() AS text) AS bigint))
            ON CONFLICT (one) DO UPDATE SET version = excluded.version;
            RETURN NULL;
        END
        $$
    """)
    for table in _TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_version "
            f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION raise_store_hours_version()"
        )


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DROP TRIGGER {table}_version ON {table}")
    op.execute("DROP FUNCTION raise_store_hours_version()")
    op.drop_table("store_hours_version")
