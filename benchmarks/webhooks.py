"""Webhook delivery throughput: events recorded in the outbox, each delivered as leased work
(claimed with others in its job's batch, signed, POSTed, recorded) by the in-process runner to a
receiver on 127.0.0.1 that keeps connections open, as most do; and the CPU time it took, here
and in Postgres."""

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from benchmarks import targets
from benchmarks.databases import database
from benchmarks.scale import database_cpu_seconds, spent_since
from benchmarks.table import print_table
from store_monitor import jobs
from store_monitor.db.models import ReportStatus, WebhookDelivery, WebhookSubscription
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.webhooks.delivery import RUN_DELIVERY, DeliveryPolicy
from store_monitor.webhooks.events import IncidentOpenedData, IncidentOpenedEvent
from store_monitor.webhooks.outbox import record
from store_monitor.webhooks.sending import WebhookSender
from store_monitor.webhooks.signing import new_secret
from store_monitor.work.lease import Runner

EVENTS = 2_000
CONCURRENCY = 8
TARGET_PER_SECOND = 200.0
"""Deliveries per second one runner should sustain here (2 shared cores): a day's incidents of
14,000 stores in well under a minute."""


async def _receiver() -> tuple[asyncio.Server, int]:
    """A loopback receiver answering 204 to every request, keeping connections open."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while not reader.at_eof():
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the sender closed the connection
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@dataclass(frozen=True, kw_only=True)
class _Measured:
    per_second: float
    cpu_here: float
    """CPU seconds of this process (the runner, and the receiver) per delivery."""
    cpu_postgres: float
    """CPU seconds of the database's server processes per delivery."""


async def _measure(url: str) -> _Measured:
    engine = create_engine(url, process_name="store-monitor-bench")
    sessions = create_sessionmaker(engine)
    server, port = await _receiver()
    at = datetime.now(UTC)
    try:
        async with sessions.begin() as session:
            session.add(
                WebhookSubscription(
                    url=f"http://127.0.0.1:{port}/hook",
                    secret=new_secret(),
                    events=["incident.opened"],
                    key_name="bench",
                )
            )
        async with sessions.begin() as session:
            events = [
                IncidentOpenedEvent(
                    timestamp=at, data=IncidentOpenedData(store_id=str(store), started_at=at)
                )
                for store in range(EVENTS)
            ]
            await record(session, events)
            ids = list(await session.scalars(sa.select(WebhookDelivery.id)))
        sender = WebhookSender(
            allow_private=True, connect_timeout_seconds=3.0, total_timeout_seconds=10.0
        )
        policy = DeliveryPolicy(sender=sender, max_attempts=12, retry_base_seconds=5.0)
        runner = Runner(owner="bench", lease_seconds=30, timeout_seconds=60, max_attempts=3)
        queue = jobs.in_process_queue(sessions, runner, policy, concurrency=CONCURRENCY)
        backends = await database_cpu_seconds(sessions)
        cpu = time.process_time()
        started = time.perf_counter()
        for delivery_id in ids:
            await queue.enqueue(RUN_DELIVERY, (delivery_id,), 1)
        while await queue.depth():  # noqa: ASYNC110 (the queue has no event to wait on)
            await asyncio.sleep(0.01)
        seconds = time.perf_counter() - started
        cpu_here = time.process_time() - cpu
        cpu_postgres = spent_since(backends, await database_cpu_seconds(sessions))
        await queue.close()
        async with sessions() as session:
            complete = await session.scalar(
                sa.select(sa.func.count()).where(WebhookDelivery.status == ReportStatus.complete)
            )
        assert complete == EVENTS, f"{complete} of {EVENTS} deliveries complete"
        return _Measured(
            per_second=EVENTS / seconds,
            cpu_here=cpu_here / EVENTS,
            cpu_postgres=cpu_postgres / EVENTS,
        )
    finally:
        server.close()
        await engine.dispose()


def run() -> None:
    with database() as url:
        measured = asyncio.run(_measure(url))
    targets.record(
        f"webhook deliveries per second, one runner, {CONCURRENCY} jobs at a time",
        f"{measured.per_second:.0f}",
        f">= {TARGET_PER_SECOND:.0f}",
        met=measured.per_second >= TARGET_PER_SECOND,
    )
    print_table(
        f"Webhook deliveries to a loopback receiver ({EVENTS:,} events, {CONCURRENCY} jobs at a "
        "time)",
        ["measure", "value", "target"],
        [
            ["deliveries per second", f"{measured.per_second:.0f}", f">= {TARGET_PER_SECOND:.0f}"],
            [
                "CPU ms per delivery, here (runner and receiver) / in Postgres",
                f"{measured.cpu_here * 1000:.2f} / {measured.cpu_postgres * 1000:.2f} ms",
                "",
            ],
        ],
    )
