"""Settings turned into the objects that run work, in one place for the API, the worker and
the CLI: the runner, the periodic upkeep, the webhook delivery policy, the queue."""

from dataclasses import dataclass
from datetime import timedelta

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor import jobs
from store_monitor.settings import Settings
from store_monitor.webhooks.delivery import DeliveryPolicy
from store_monitor.webhooks.sending import WebhookSender
from store_monitor.work.arq import ArqQueue
from store_monitor.work.lease import Runner, runner_name
from store_monitor.work.queue import WorkQueue


@dataclass(frozen=True, slots=True)
class Work:
    runner: Runner
    upkeep: jobs.Upkeep
    delivery: DeliveryPolicy
    queue: WorkQueue


async def build_work(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    redis: ArqRedis | None = None,
) -> Work:
    """The runner, upkeep and queue `settings` ask for. The queue runs jobs in-process without
    `settings.redis_url`; else it is Arq's, over `redis` (a worker's own pool) or over a pool
    of its own. The caller closes it."""
    runner = runner_of(settings)
    delivery = delivery_policy(settings)
    queue = await _queue(settings, sessionmaker, runner, delivery, redis)
    return Work(runner=runner, upkeep=upkeep_of(settings), delivery=delivery, queue=queue)


def runner_of(settings: Settings) -> Runner:
    """This process's runner, under a name of its own."""
    return Runner(
        owner=runner_name(),
        lease_seconds=settings.lease_seconds,
        timeout_seconds=settings.job_timeout_seconds,
        max_attempts=settings.job_max_tries,
        shard_stores=settings.shard_stores,
        public_url=settings.public_url,
    )


def upkeep_of(settings: Settings) -> jobs.Upkeep:
    return jobs.Upkeep(
        interval_seconds=settings.sweep_interval_seconds,
        max_attempts=settings.job_max_tries,
        delivery_max_attempts=settings.webhook_max_attempts,
        retention=timedelta(days=settings.report_retention_days),
        event_retention=timedelta(days=settings.event_retention_days),
        poll_retention_days=settings.poll_retention_days,
    )


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    """How this process sends webhooks: its one sender, and the retry limits."""
    sender = WebhookSender(
        allow_private=settings.webhook_private_targets,
        connect_timeout_seconds=settings.webhook_connect_timeout_seconds,
        total_timeout_seconds=settings.webhook_timeout_seconds,
    )
    return DeliveryPolicy(
        sender=sender,
        max_attempts=settings.webhook_max_attempts,
        retry_base_seconds=settings.webhook_retry_base_seconds,
    )


async def _queue(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    runner: Runner,
    delivery: DeliveryPolicy,
    redis: ArqRedis | None,
) -> WorkQueue:
    if settings.redis_url is None:
        return jobs.in_process_queue(
            sessionmaker, runner, delivery, concurrency=settings.max_concurrent_jobs
        )
    # A started job is stale once it has had a lease's length to claim its work.
    if redis is not None:
        return ArqQueue(
            redis,
            queue_name=settings.queue_name,
            job_timeout_seconds=settings.job_timeout_seconds,
            claim_seconds=settings.lease_seconds,
        )
    return await ArqQueue.connect(
        settings.redis_url,
        queue_name=settings.queue_name,
        job_timeout_seconds=settings.job_timeout_seconds,
        claim_seconds=settings.lease_seconds,
    )
