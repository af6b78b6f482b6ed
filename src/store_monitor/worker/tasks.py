"""The worker's jobs: thin wrappers that turn Arq's arguments into a use case call."""

from typing import Any
from uuid import UUID

from store_monitor import live, report_runs, shards
from store_monitor.webhooks import delivery
from store_monitor.worker import context


async def run_report(ctx: dict[str, Any], report_id: str, attempt: int) -> str | None:
    """Make one attempt of a report; returns the status the attempt left it with, if it ran."""
    status = await report_runs.run_report(
        context.sessionmaker(ctx),
        UUID(report_id),
        attempt,
        context.runner(ctx),
        queue=context.queue(ctx),
    )
    return None if status is None else status.value


async def run_shard(ctx: dict[str, Any], report_id: str, shard: int, attempt: int) -> str | None:
    """Make one attempt of a shard of a report; the status it left the shard with, if it ran."""
    status = await shards.run_shard(
        context.sessionmaker(ctx), UUID(report_id), shard, attempt, context.runner(ctx)
    )
    return None if status is None else status.value


async def evaluate_live(ctx: dict[str, Any], evaluation_id: str, attempt: int) -> str | None:
    """Make one attempt of a live evaluation; the status it left it with, if it ran."""
    status = await live.run_evaluation(
        context.sessionmaker(ctx),
        UUID(evaluation_id),
        attempt,
        context.runner(ctx),
        queue=context.queue(ctx),
    )
    return None if status is None else status.value


async def run_delivery(ctx: dict[str, Any], delivery_id: str, attempt: int) -> str | None:
    """Make one attempt at a webhook delivery; the status it left the delivery with, if it ran."""
    status = await delivery.run_delivery(
        context.sessionmaker(ctx),
        UUID(delivery_id),
        attempt,
        context.runner(ctx),
        context.delivery(ctx),
        queue=context.queue(ctx),
    )
    return None if status is None else status.value
