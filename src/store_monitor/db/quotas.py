"""How many of a kind of thing (webhooks, schedules) one API key may have."""

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession


class QuotaReached(Exception):
    """The key has `limit` of `thing` already, the most it may have: the API's 409."""

    def __init__(self, thing: str, limit: int) -> None:
        things = thing if limit == 1 else f"{thing}s"
        super().__init__(
            f"this key has {limit} {things} already, the most it may have; delete one first"
        )
        self.code = f"too_many_{thing}s"
        self.limit = limit


async def check_quota(
    session: AsyncSession,
    *,
    thing: str,
    key_name: str | None,
    owned: sa.Select[int],
    limit: int,
) -> None:
    """`QuotaReached` if the key (None with authentication off) owns `limit` things already, as
    `owned` counts them. The count is taken under a transaction lock of the key and the kind of
    thing, so that requests at once cannot both take the last place: the caller adds its thing
    in the same transaction."""
    await session.execute(
        sa.select(
            sa.func.pg_advisory_xact_lock(sa.func.hashtext(thing), sa.func.hashtext(key_name or ""))
        )
    )
    if (await session.scalar(owned) or 0) >= limit:
        raise QuotaReached(thing, limit)
