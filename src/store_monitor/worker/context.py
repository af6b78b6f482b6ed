"""Typed access to the Arq worker's `ctx`: the settings given at start and what start-up built.

Arq types `ctx` as `dict[str, Any]`; a TypedDict would not match its signatures, so the keys are
read here, once, with their types checked.
"""

import asyncio
from typing import Any, Final, TypeVar

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from store_monitor.settings import Settings
from store_monitor.work.queue import Handler

SETTINGS: Final = "store_monitor_settings"
ENGINE: Final = "store_monitor_engine"
SESSIONMAKER: Final = "store_monitor_sessionmaker"
HANDLERS: Final = "store_monitor_handlers"
UPKEEP: Final = "store_monitor_upkeep"

T = TypeVar("T")


def _read(ctx: dict[str, Any], key: str, kind: type[T]) -> T:
    value = ctx[key]
    assert isinstance(value, kind), f"ctx[{key!r}] is {type(value).__name__}, not {kind.__name__}"
    return value


def settings(ctx: dict[str, Any]) -> Settings:
    return _read(ctx, SETTINGS, Settings)


def engine(ctx: dict[str, Any]) -> AsyncEngine:
    return _read(ctx, ENGINE, AsyncEngine)


def sessionmaker(ctx: dict[str, Any]) -> async_sessionmaker[AsyncSession]:
    return _read(ctx, SESSIONMAKER, async_sessionmaker)


def redis(ctx: dict[str, Any]) -> ArqRedis:
    return _read(ctx, "redis", ArqRedis)


def handlers(ctx: dict[str, Any]) -> dict[str, Handler]:
    """Each kind's job body, queueing more work (a report's shards, say) on the worker's queue."""
    value: dict[str, Handler] = ctx[HANDLERS]
    return value


def upkeep(ctx: dict[str, Any]) -> "asyncio.Task[None]":
    return _read(ctx, UPKEEP, asyncio.Task)
