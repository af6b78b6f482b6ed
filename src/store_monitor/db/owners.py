"""Which stores a reader may see: every store, or only an owner's (the `store_owners` table).

One filter for every per-store read (report rows today; incidents, daily figures and store pages
as they come), so that an owner's narrowing is written once."""

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute

from store_monitor.db.models import StoreOwner


def visible_to(
    owner_id: str | None, store_id: sa.ColumnElement[str] | InstrumentedAttribute[str]
) -> sa.ColumnElement[bool]:
    """True for the rows whose `store_id` the owner may see; every row when `owner_id` is None."""
    if owner_id is None:
        return sa.true()
    return store_id.in_(sa.select(StoreOwner.store_id).where(StoreOwner.owner_id == owner_id))
