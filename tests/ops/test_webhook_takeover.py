"""A worker killed mid-delivery, between real `store-monitor worker` processes on Redis and
Postgres: another takes the delivery over once the lease runs out and sends it again, with the
same `webhook-id`, to a receiver on 127.0.0.1."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from standardwebhooks import Webhook

from store_monitor.db.models import ReportStatus, WebhookDelivery, WebhookSubscription
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.webhooks.events import IncidentOpenedEvent, event_id
from store_monitor.webhooks.outbox import record
from store_monitor.webhooks.signing import new_secret
from support.service import empty_postgres, postgres_mode
from webhooks.receivers import ReceivedRequest, in_turn, receiver, respond
from webhooks.test_delivery import opened

_WORKER = "from store_monitor.cli import app; app(['worker'])"


def _environment(**settings: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORE_MONITOR_")}
    return env | {f"STORE_MONITOR_{name.upper()}": str(value) for name, value in settings.items()}


async def test_a_delivery_whose_worker_is_killed_is_sent_again_by_another(
    postgres_url: str, tmp_path: Path
) -> None:
    await empty_postgres(postgres_url)
    settings = postgres_mode(postgres_url)
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    sessions = create_sessionmaker(engine)
    first_request = asyncio.Event()

    async def hang_first(_request: ReceivedRequest, _writer: asyncio.StreamWriter) -> None:
        first_request.set()
        await asyncio.Event().wait()

    processes: dict[int, asyncio.subprocess.Process] = {}
    try:
        async with receiver(in_turn(hang_first, respond(204))) as hook:
            secret = new_secret()
            async with sessions.begin() as session:
                session.add(
                    WebhookSubscription(
                        url=hook.url(),
                        secret=secret,
                        events=["incident.opened"],
                        key_name="reports-key",
                    )
                )
                [key] = await record(session, [opened("s1")])
            environment = _environment(
                database_url=postgres_url,
                redis_url=settings.redis_url,
                queue_name=settings.queue_name,
                lease_seconds=2.0,
                sweep_interval_seconds=0.5,
                webhook_private_targets="true",
                webhook_timeout_seconds=60,
            )
            for number in range(2):
                with (tmp_path / f"worker-{number}.log").open("wb") as log:
                    process = await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-c",
                        _WORKER,
                        env=environment,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=log,
                    )
                processes[process.pid] = process
            async with asyncio.timeout(30):
                await first_request.wait()
            async with sessions() as session:
                owner = await session.scalar(sa.select(WebhookDelivery.lease_owner))
            assert owner is not None
            victim = processes[int(owner.rsplit(":", 2)[1])]  # host:pid:token
            victim.send_signal(signal.SIGKILL)
            assert await victim.wait() == -signal.SIGKILL

            async with asyncio.timeout(30):
                while True:
                    async with sessions() as session:
                        delivery = await session.scalar(sa.select(WebhookDelivery))
                    assert delivery is not None
                    if delivery.status is ReportStatus.complete:
                        break
                    await asyncio.sleep(0.1)
        first, second = hook.requests
        assert first.headers["webhook-id"] == second.headers["webhook-id"] == event_id(key)
        body = Webhook(secret).verify(second.body, second.headers)
        assert IncidentOpenedEvent.model_validate(body) == opened("s1")
        assert delivery.attempts == 2
    finally:
        for process in processes.values():
            if process.returncode is None:
                process.kill()
                await process.wait()
        await engine.dispose()
