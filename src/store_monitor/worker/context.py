"""Typed access to the Arq worker's `ctx`: the settings given at start and what start-up built.

Arq types `ctx` as `dict[str, Any]`; a TypedDict would not match its signatures, so the keys are
read here, once, with their types checked.
"""

import asyncio
from typing import Any, Final, TypeVar

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from store_monitor.settings import Settings
from store_monitor.webhooks.delivery import DeliveryPolicy
from store_monitor.work.lease import Runner
from store_monitor.work.queue import WorkQueue

SETTINGS: Final = "store_monitor_settings"
ENGINE: Final = "store_monitor_engine"
SESSIONMAKER: Final = "store_monitor_sessionmaker"
RUNNER: Final = "store_monitor_runner"
QUEUE: Final = "store_monitor_queue"
UPKEEP: Final = "store_monitor_upkeep"
DELIVERY: Final = "store_monitor_delivery"

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


def runner(ctx: dict[str, Any]) -> Runner:
    return _read(ctx, RUNNER, Runner)


def delivery(ctx: dict[str, Any]) -> DeliveryPolicy:
    value = ctx[DELIVERY]
    assert isinstance(value, DeliveryPolicy)
    return value


def queue(ctx: dict[str, Any]) -> WorkQueue:
    """The queue the worker takes its jobs from, to queue more (a report's shards)."""
    value: WorkQueue = ctx[QUEUE]
    return value


def upkeep(ctx: dict[str, Any]) -> "asyncio.Task[None]":
    return _read(ctx, UPKEEP, asyncio.Task)
