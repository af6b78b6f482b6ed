"""What `store_monitor.work.arq` relies on beyond Arq's public API: if an Arq upgrade changes
it, these fail (and takeover of jobs whose runner died as they started would break silently)."""

import inspect
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from arq.connections import RedisSettings
from arq.constants import in_progress_key_prefix
from arq.jobs import Job
from arq.worker import Worker, func

from store_monitor.settings import Settings
from store_monitor.work.arq import ARQ_IN_PROGRESS_EXTRA_SECONDS, ArqQueue, arq_job_timeout
from store_monitor.work.queue import JobState, job_id
from support.service import close_worker


async def _in_progress_ttl_ms(ctx: dict[str, Any], *args: Any) -> int:
    return int(await ctx["redis"].pttl(in_progress_key_prefix + ctx["job_id"]))


async def test_a_started_jobs_in_progress_key_lasts_its_timeout_and_ten_seconds_more(
    settings: Settings, queue: ArqQueue
) -> None:
    assert settings.redis_url is not None
    job_timeout = arq_job_timeout(settings.job_timeout_seconds)
    # A key of its own: Arq's job and result keys are shared by every queue on the Redis, and
    # a result kept from an earlier run would make this queueing a no-op.
    key = (str(uuid4()),)
    await queue.enqueue("probe", key, 1)
    worker = Worker(
        functions=[func(_in_progress_ttl_ms, name="probe")],
        queue_name=settings.queue_name,
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        job_timeout=job_timeout,
        burst=True,
        handle_signals=False,
        poll_delay=0.02,
    )
    try:
        await worker.async_run()
    finally:
        await close_worker(worker)
    job = Job(job_id("probe", key, 1), queue._redis, _queue_name=settings.queue_name)
    left_ms = await job.result(timeout=5)
    lasts_ms = (job_timeout + ARQ_IN_PROGRESS_EXTRA_SECONDS) * 1000
    assert lasts_ms - 2_000 < left_ms <= lasts_ms


def test_the_worker_polls_through_the_method_outlasting_worker_overrides() -> None:
    assert inspect.iscoroutinefunction(Worker._poll_iteration)
    assert "self._poll_iteration()" in inspect.getsource(Worker.main)


def test_a_round_checks_max_jobs_before_it_starts_each_job() -> None:
    # What lets a stopping worker end its round without starting more jobs.
    source = inspect.getsource(Worker.start_jobs)
    assert source.index("self.job_counter >= self.max_jobs") < source.index("self.run_job(")


async def test_a_job_due_later_waits_in_the_queue_until_then(
    settings: Settings, queue: ArqQueue
) -> None:
    report = uuid4()
    await queue.enqueue("later", (report,), 1, due_at=datetime.now(UTC) + timedelta(hours=1))
    assert await queue.state("later", (report,), 1) is JobState.waiting
    score = await queue._redis.zscore(settings.queue_name, f"later:{report}:1")
    assert score is not None
    assert score / 1000 > (datetime.now(UTC) + timedelta(minutes=59)).timestamp()
