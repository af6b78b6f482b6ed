"""Upkeep of the stored polls: weekly tables made ahead of the polls, old weeks dropped.

Run at every worker's start (and the embedded mode's), and periodically; idempotent, so any
number of workers may run it at once: the partition changes take turns on a table lock.
"""

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor.db.partitions import drop_poll_partitions_before, make_poll_weeks_ahead

log = logging.getLogger(__name__)

PARTITIONS_AHEAD: Final = timedelta(weeks=2)
"""How far past `now` the weeks' tables exist, so that live polls never wait for one."""

MIN_RETENTION_DAYS: Final = 7
"""A report reads the week before its `now`: a shorter retention would cut it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PollPartitionChanges:
    created: list[date]
    """Mondays of the weeks whose table was made ahead (attached by the week's first load)."""
    dropped: list[date]
    """Mondays of the weeks dropped by retention, with their polls."""


async def maintain_poll_partitions(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    retention_days: int | None,
) -> PollPartitionChanges:
    """Make the tables of the weeks from `now`'s through `now + PARTITIONS_AHEAD` that have
    none (see `make_poll_weeks_ahead`); with a retention, drop the weeks that ended
    `retention_days` days before `now` or earlier (a week with any instant inside the retention
    stays whole). None keeps every poll."""
    if retention_days is not None and retention_days < MIN_RETENTION_DAYS:
        # Fewer would drop polls of the week a report at the latest poll reads.
        raise ValueError(
            f"retention_days must be at least {MIN_RETENTION_DAYS}, not {retention_days}"
        )
    async with sessionmaker.begin() as session:
        created = await make_poll_weeks_ahead(session, start=now, through=now + PARTITIONS_AHEAD)
        dropped = []
        if retention_days is not None:
            cutoff = now - timedelta(days=retention_days)
            dropped = await drop_poll_partitions_before(session, cutoff)
    if created or dropped:
        log.info(
            "poll partitions: %d weeks created, %d dropped by retention",
            len(created),
            len(dropped),
            # Not `created`: a LogRecord's own attribute (the record's time).
            extra={
                "weeks_created": [str(monday) for monday in created],
                "weeks_dropped": [str(monday) for monday in dropped],
            },
        )
    return PollPartitionChanges(created=created, dropped=dropped)
