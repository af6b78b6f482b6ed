"""The embedded mode's first-start sample: generated stores loaded once into an empty database."""

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor import ingest, synthetic
from store_monitor.db.models import Poll
from store_monitor.sources import read_business_hours, read_polls, read_timezones

log = logging.getLogger(__name__)

# Loaded in well under a second. Its store ids have a prefix of their own, so that no upload
# (nor `store-monitor generate`) can share one with it.
SAMPLE_STORES: Final = 200
SAMPLE_DAYS: Final = 8
SAMPLE_STORE_PREFIX: Final = "sample-"
SAMPLE_END: Final = synthetic.DEFAULT_END
"""The sample's polls end here, whenever it is loaded."""
_SAMPLE_SEED: Final = 0


async def load_sample_if_empty(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
    """Load the sample unless any poll is stored (the sample's or an upload's); whether the
    sample's polls are stored after."""
    async with sessionmaker() as session:
        if await session.scalar(sa.select(sa.exists().select_from(Poll))):
            sample_poll = sa.exists().where(Poll.store_id.startswith(SAMPLE_STORE_PREFIX))
            return bool(await session.scalar(sa.select(sample_poll)))
    log.info("no polls yet: loading a sample of %d stores over %d days", SAMPLE_STORES, SAMPLE_DAYS)
    with tempfile.TemporaryDirectory(prefix="store-monitor-sample-") as directory:
        files = await asyncio.to_thread(
            synthetic.generate,
            Path(directory),
            stores=SAMPLE_STORES,
            days=SAMPLE_DAYS,
            seed=_SAMPLE_SEED,
            store_id_prefix=SAMPLE_STORE_PREFIX,
        )
        polls = await asyncio.to_thread(read_polls, files.store_status)
        hours = await asyncio.to_thread(read_business_hours, files.menu_hours)
        zones = await asyncio.to_thread(read_timezones, files.timezones)
    async with sessionmaker.begin() as session:
        await ingest.ingest_polls(session, polls)
        await ingest.ingest_business_hours(session, hours)
        await ingest.ingest_timezones(session, zones)
    log.info("sample loaded: %d polls of %d stores", polls.height, SAMPLE_STORES)
    return True
