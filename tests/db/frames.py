"""Builders of small literal frames in the engine's schemas, and readers of what is stored."""

from datetime import UTC, datetime, time

import polars as pl
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import BusinessHours, Poll, Store, Timezone
from store_monitor.frames import BUSINESS_HOURS, POLLS, TIMEZONES


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def polls(*rows: tuple[str, str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        [(store, at(when), status) for store, when, status in rows], schema=POLLS, orient="row"
    )


def hours(*rows: tuple[str, int, str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            (store, day, time.fromisoformat(start), time.fromisoformat(end))
            for store, day, start, end in rows
        ],
        schema=BUSINESS_HOURS,
        orient="row",
    )


def zones(*rows: tuple[str, str]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=TIMEZONES, orient="row")


async def stored_polls(session: AsyncSession) -> pl.DataFrame:
    rows = (await session.execute(sa.select(Poll.store_id, Poll.timestamp_utc, Poll.status))).all()
    frame = pl.DataFrame(
        [(store, when, str(status)) for store, when, status in rows], schema=POLLS, orient="row"
    )
    return frame.sort(POLLS.names())


async def stored_hours(session: AsyncSession) -> pl.DataFrame:
    columns = [getattr(BusinessHours, name) for name in BUSINESS_HOURS.names()]
    rows = (await session.execute(sa.select(*columns))).all()
    return pl.DataFrame(rows, schema=BUSINESS_HOURS, orient="row").sort(BUSINESS_HOURS.names())


async def stored_zones(session: AsyncSession) -> pl.DataFrame:
    rows = (await session.execute(sa.select(Timezone.store_id, Timezone.timezone_str))).all()
    return pl.DataFrame(rows, schema=TIMEZONES, orient="row").sort("store_id")


async def stored_stores(session: AsyncSession) -> list[str]:
    return list((await session.scalars(sa.select(Store.store_id).order_by(Store.store_id))).all())
