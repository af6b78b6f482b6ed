"""The worker's jobs: one per work table, Arq's arguments turned into the key and attempt of
that kind's handler (`store_monitor.jobs.handlers`, the bodies the in-process queue runs too)."""

from typing import Any

from arq.worker import Function, func

from store_monitor.work.arq import key_of
from store_monitor.work.table import WorkTable
from store_monitor.worker import context


def arq_job(table: WorkTable) -> Function:
    """The Arq function of `table`'s kind. Each job is one attempt, and the sweep queues the
    next one when it is due: Arq runs a job once (a retry of its own would find the attempt
    made) and keeps no result, so that the job of an attempt that did not run can be queued
    again."""

    async def make_attempt(ctx: dict[str, Any], *arguments: str | int) -> str | None:
        """Make one attempt; the status it left its work with, if it ran."""
        *key, attempt = arguments
        assert isinstance(attempt, int)
        handler = context.handlers(ctx)[table.kind]
        status = await handler(key_of(table, key), attempt)
        return None if status is None else status.value

    return func(make_attempt, name=table.kind, max_tries=1, keep_result=0)
