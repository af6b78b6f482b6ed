"""Polls partitioned by week: range partitions on timestamp_utc, one per ISO week in UTC.

The stored polls move into a new partitioned `polls` with the same primary key (it includes the
partition key), one partition per week that has polls, named after its Monday (`polls_20230116`,
as `store_monitor.db.partitions` names them). Stores learn their first poll. The BRIN index on timestamp_utc goes: partition
pruning now skips the weeks outside a time range, and the index only cost ingest time.

Revision ID: 3a03ad6a5132
Revises: 97b987e2c479
Create Date: 2026-12-01 15:50:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3a03ad6a5132"
down_revision: str | Sequence[str] | None = "97b987e2c479"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = 'store_id text COLLATE "C" NOT NULL, timestamp_utc timestamptz NOT NULL, status poll_status NOT NULL'
_PRIMARY_KEY = (
    "ALTER TABLE polls ADD CONSTRAINT pk_polls PRIMARY KEY (store_id, timestamp_utc, status)"
)
# One partition per week with polls; the bounds are Monday 00:00 UTC, as the application's.
_WEEKLY_PARTITIONS = """
DO $$
DECLARE monday timestamp;
BEGIN
    FOR monday IN
        SELECT DISTINCT date_trunc('week', timestamp_utc AT TIME ZONE 'UTC')
        FROM polls_unpartitioned ORDER BY 1
    LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF polls FOR VALUES FROM (%L) TO (%L)',
            'polls_' || to_char(monday, 'YYYYMMDD'),
            monday::text || '+00',
            (monday + interval '1 week')::text || '+00'
        );
    END LOOP;
END
$$
"""

# The weeks' tables made ahead of their polls and not attached yet: empty, not partitions.
_DROP_WEEKS_MADE_AHEAD = """
DO $$
DECLARE week text;
BEGIN
    FOR week IN
        SELECT relname FROM pg_class
        WHERE relnamespace = CAST(current_schema() AS regnamespace) AND relkind = 'r'
          AND relname ~ '^polls_[0-9]{8}$'
    LOOP
        EXECUTE format('DROP TABLE %I', week);
    END LOOP;
END
$$
"""


def upgrade() -> None:
    # Each store's first poll bounds the search for its last poll before a report's week.
    op.add_column("stores", sa.Column("first_poll_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE stores SET first_poll_at = "
        "(SELECT min(polls.timestamp_utc) FROM polls WHERE polls.store_id = stores.store_id)"
    )
    op.execute("ALTER TABLE polls RENAME TO polls_unpartitioned")
    op.execute("DROP INDEX ix_polls_timestamp_utc")
    # Frees the name pk_polls; a plain scan copies the rows out without it.
    op.execute("ALTER TABLE polls_unpartitioned DROP CONSTRAINT pk_polls")
    op.execute(f"CREATE TABLE polls ({_COLUMNS}) PARTITION BY RANGE (timestamp_utc)")
    op.execute(_WEEKLY_PARTITIONS)
    op.execute(
        "INSERT INTO polls (store_id, timestamp_utc, status) "
        "SELECT store_id, timestamp_utc, status FROM polls_unpartitioned"
    )
    # Built after the load: sorting once is cheaper than keeping the index up row by row.
    op.execute(_PRIMARY_KEY)
    op.execute("DROP TABLE polls_unpartitioned")


def downgrade() -> None:
    op.drop_column("stores", "first_poll_at")
    op.execute("ALTER TABLE polls RENAME TO polls_partitioned")
    op.execute("ALTER TABLE polls_partitioned DROP CONSTRAINT pk_polls")
    op.execute(f"CREATE TABLE polls ({_COLUMNS})")
    op.execute(
        "INSERT INTO polls (store_id, timestamp_utc, status) "
        "SELECT store_id, timestamp_utc, status FROM polls_partitioned"
    )
    op.execute(_PRIMARY_KEY)
    op.execute("CREATE INDEX ix_polls_timestamp_utc ON polls USING brin (timestamp_utc)")
    # The partitions go with their parent; the weeks made ahead, on their own.
    op.execute("DROP TABLE polls_partitioned")
    op.execute(_DROP_WEEKS_MADE_AHEAD)
