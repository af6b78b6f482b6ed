"""The live view end to end, between real processes: `store-monitor serve`, two `store-monitor
worker`s (one killed half-way and replaced), Postgres, Redis and a receiver on 127.0.0.1.

A week of polls is uploaded hour by hour through the API, each hour evaluated before the next
comes. The receiver verifies every signature with the `standardwebhooks` library, drops
duplicates by `webhook-id`, and answers 503 to the first attempt of about a third of the events.
At the end, the `incident.closed` events it kept are the rows of a report's incidents CSV at the
same N, for the incidents the contract says are announced ("Live", its last paragraph); every
event was delivered, and every incident announced opened was closed or is down now.
"""

import asyncio
import contextlib
import csv
import io
import signal
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import uuid4

import httpx
import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook, WebhookVerificationError

from store_monitor.db.models import KeyScope, LiveEvaluation, ReportStatus, WebhookDelivery
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.synthetic import DEFAULT_END, generate
from support.live import running, wait_until_ready
from support.processes import environment, free_port
from support.service import REDIS_URL, SECRET_KEY, bearer, create_key, empty_postgres
from webhooks.receivers import ReceivedRequest, receiver, respond

HOURS = 7 * 24
KILL_AT_HOUR = HOURS // 2
WEEK_START = DEFAULT_END - timedelta(weeks=1)
"""Polls before it are loaded at once (a history: it floods no one); the week after, by hour."""
POLL_INSTANT = "%Y-%m-%d %H:%M:%S%.f UTC"

# About a minute on a quiet machine (168 evaluations one after another), but several on a loaded
# one: more than the suite's default limit allows.
pytestmark = pytest.mark.timeout(900)

Sessions = async_sessionmaker[AsyncSession]
T = TypeVar("T")
Incident = tuple[str, str, str, str]
"""A row of the incidents CSV: store_id, started_at, ended_at, minutes, as text."""


@dataclass(frozen=True)
class Week:
    """The data as uploads: business hours and zones, the polls before the week, then the
    week's polls hour by hour."""

    business_hours: bytes
    timezones: bytes
    history: bytes
    hours: list[bytes]
    latest: dict[str, datetime]
    """Each store's latest poll: its L at the end."""
    always_open: str
    """A store without business hours (open all the time), down 30 hours across the kill."""
    overnight: str
    """A store whose shifts end after midnight, down a whole day."""


def a_week(directory: Path) -> Week:
    """30 stores of generated data, with the two long outages of `Week` added."""
    files = generate(directory, stores=30, days=9, seed=3)
    hours = pl.read_csv(files.menu_hours, infer_schema=False)
    raw = pl.read_csv(files.store_status, infer_schema=False)
    polls = raw.with_columns(
        at=pl.col("timestamp_utc").str.to_datetime(POLL_INSTANT, time_zone="UTC")
    ).sort("at")
    always_open = min(set(polls["store_id"]) - set(hours["store_id"]))
    overnight = hours.filter(pl.col("end_time_local") < pl.col("start_time_local"))[
        "store_id"
    ].min()
    assert isinstance(overnight, str)

    def down(store: str, start: timedelta, length: timedelta) -> pl.Expr:
        at = pl.col("at")
        return (pl.col("store_id") == store) & at.is_between(
            WEEK_START + start, WEEK_START + start + length, closed="left"
        )

    outages = down(always_open, timedelta(hours=70), timedelta(hours=30)) | down(
        overnight, timedelta(days=2), timedelta(days=1)
    )
    polls = polls.with_columns(status=pl.when(outages).then(pl.lit("inactive")).otherwise("status"))

    def upload(part: pl.DataFrame) -> bytes:
        return part.select(raw.columns).write_csv().encode()

    history = polls.filter(pl.col("at") < WEEK_START)
    # Every store is in the history: each store's first threshold is then N0 - 1 h.
    assert history["store_id"].n_unique() == polls["store_id"].n_unique()
    by_hour = [
        polls.filter(pl.col("at").is_between(start, start + timedelta(hours=1), closed="left"))
        for start in (WEEK_START + timedelta(hours=hour) for hour in range(HOURS))
    ]
    return Week(
        business_hours=files.menu_hours.read_bytes(),
        timezones=files.timezones.read_bytes(),
        history=upload(history),
        hours=[upload(hour) for hour in by_hour if hour.height],
        latest=dict(polls.group_by("store_id").agg(pl.col("at").max()).iter_rows()),
        always_open=always_open,
        overnight=overnight,
    )


@dataclass
class Inbox:
    """The receiver's side: verified events by `webhook-id`, each kept once."""

    secret: str = ""
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)
    """Events whose first attempt was answered 503: about a third, chosen by their id."""
    duplicates: int = 0
    forged: list[ReceivedRequest] = field(default_factory=list)

    async def answer(self, request: ReceivedRequest, writer: asyncio.StreamWriter) -> None:
        try:
            body = Webhook(self.secret).verify(request.body, request.headers)
        except WebhookVerificationError:
            self.forged.append(request)
            await respond(400)(request, writer)
            return
        webhook_id = request.headers["webhook-id"]
        if webhook_id in self.events:
            self.duplicates += 1
        elif webhook_id not in self.refused and zlib.crc32(webhook_id.encode()) % 3 == 0:
            self.refused.add(webhook_id)
            await respond(503)(request, writer)
            return
        else:
            self.events[webhook_id] = body
        await respond(204)(request, writer)

    def data(self, event_type: str) -> list[dict[str, Any]]:
        return [body["data"] for body in self.events.values() if body["type"] == event_type]


async def until(
    probe: Callable[[], Awaitable[T | None]], *, what: str, within: float = 60, every: float = 0.1
) -> T:
    """The first value of `probe` that is not None, asked `every` so many seconds."""
    try:
        async with asyncio.timeout(within):
            while True:
                value = await probe()
                if value is not None:
                    return value
                await asyncio.sleep(every)
    except TimeoutError:
        raise AssertionError(f"not within {within} s: {what}") from None


@dataclass
class Service:
    base_url: str
    env: dict[str, str]
    logs: Path
    stack: contextlib.AsyncExitStack
    workers: dict[int, asyncio.subprocess.Process] = field(default_factory=dict)

    async def start_worker(self) -> None:
        log = self.logs / f"worker-{len(self.workers)}.log"
        worker = await self.stack.enter_async_context(running("worker", env=self.env, log=log))
        self.workers[worker.pid] = worker

    async def kill_a_worker(self, sessions: Sessions) -> str:
        """SIGKILL the worker running the evaluation if one is seen within 3 s (else the first
        worker), and start another in its place; which one was killed."""

        async def holder() -> int | None:
            async with sessions() as session:
                owner = await session.scalar(
                    sa.select(LiveEvaluation.lease_owner).where(
                        LiveEvaluation.status == ReportStatus.running
                    )
                )
            return None if owner is None else int(owner.rsplit(":", 2)[1])  # host:pid:token

        pid = None
        with contextlib.suppress(AssertionError):
            pid = await until(holder, what="an evaluation running", within=3)
        victim = self.workers.get(pid or 0) or next(iter(self.workers.values()))
        victim.send_signal(signal.SIGKILL)
        assert await victim.wait() == -signal.SIGKILL
        await self.start_worker()
        return "the worker running the evaluation" if victim.pid == pid else "a worker"


@contextlib.asynccontextmanager
async def service(postgres_url: str, logs: Path) -> AsyncIterator[Service]:
    """The API and two workers, with keys required, retries and takeovers within seconds."""
    port = free_port()
    env = environment(
        database_url=postgres_url,
        redis_url=REDIS_URL,
        queue_name=f"store-monitor-test:{uuid4().hex}",
        secret_key=SECRET_KEY,
        log_level="WARNING",
        webhook_private_targets="true",
        webhook_retry_base_seconds="0.2",
        lease_seconds="3",
        sweep_interval_seconds="1",
    )
    async with contextlib.AsyncExitStack() as stack:
        started = Service(f"http://127.0.0.1:{port}", env, logs, stack)
        server = await stack.enter_async_context(
            running("serve", "--port", str(port), env=env, log=logs / "serve.log")
        )
        for _ in range(2):
            await started.start_worker()
        await wait_until_ready(started.base_url, server, logs / "serve.log")
        yield started


async def upload(client: httpx.AsyncClient, route: str, content: bytes) -> None:
    response = await client.post(route, content=content, headers={"Content-Type": "text/csv"})
    assert response.status_code == 200, response.text


async def caught_up(client: httpx.AsyncClient) -> datetime:
    """N, once the live evaluation has caught up with the polls stored."""

    async def now() -> datetime | None:
        view = (await client.get("/live", params={"limit": 1})).raise_for_status().json()
        if view["now"] is None or view["now"] != view["latest_poll_at"]:
            return None
        return _at(view["now"])

    return await until(now, what="the live evaluation catches up")


async def deliveries_done(sessions: Sessions) -> dict[ReportStatus, int]:
    """The deliveries by status, once none is left to send."""

    async def counts() -> dict[ReportStatus, int] | None:
        async with sessions() as session:
            rows = await session.execute(
                sa.select(WebhookDelivery.status, sa.func.count()).group_by(WebhookDelivery.status)
            )
        by_status: dict[ReportStatus, int] = dict(rows.all())
        unfinished = by_status.get(ReportStatus.pending, 0) + by_status.get(ReportStatus.running, 0)
        return None if unfinished else by_status

    return await until(counts, what="every delivery sent")


async def incidents_csv(client: httpx.AsyncClient, as_of: datetime) -> list[Incident]:
    """The rows of the incidents CSV of a new report at `as_of`."""
    triggered = await client.post("/trigger_report", json={"as_of": as_of.isoformat()})
    assert triggered.status_code == 202, triggered.text
    report_id = triggered.json()["report_id"]

    async def final() -> dict[str, Any] | None:
        report: dict[str, Any] = (await client.get(f"/reports/{report_id}")).json()
        return report if report["status"] in ("Complete", "Failed") else None

    report = await until(final, what="the report is done")
    assert report["status"] == "Complete", report
    assert _at(report["now"]) == as_of
    download = await client.get(f"/reports/{report_id}/incidents")
    assert download.status_code == 200, download.text
    header, *rows = csv.reader(io.StringIO(download.text))
    assert header == ["store_id", "started_at", "ended_at", "minutes"]
    return [(store, started, ended, minutes) for store, started, ended, minutes in rows]


def announced(
    report: list[Incident], *, now: datetime, first_threshold: datetime, latest: dict[str, datetime]
) -> list[Incident]:
    """The report's incidents the contract has announced closed, once each: clipped by neither
    end of the week, ended after the store's first threshold and at or before its latest poll."""
    return [
        (store, started, ended, minutes)
        for store, started, ended, minutes in report
        if now - timedelta(weeks=1) < _at(started)
        and first_threshold < _at(ended) <= latest[store]
        and _at(ended) < now
    ]


def closed_rows(inbox: Inbox, *, started_after: datetime) -> list[Incident]:
    """The `incident.closed` events received, as rows of the incidents CSV."""
    return [
        (data["store_id"], data["started_at"], data["ended_at"], f"{data['minutes']:.2f}")
        for data in inbox.data("incident.closed")
        if _at(data["started_at"]) > started_after
    ]


async def test_a_week_hour_by_hour_announces_the_reports_incidents_once_each(
    postgres_url: str, tmp_path: Path
) -> None:
    await empty_postgres(postgres_url)
    week = a_week(tmp_path / "data")
    loader = await create_key(postgres_url, "loader", scope=KeyScope.ingest)
    reader = await create_key(postgres_url, "reader", scope=KeyScope.reports)
    engine = create_engine(postgres_url, process_name="store-monitor-tests")
    sessions = create_sessionmaker(engine)
    inbox = Inbox()
    try:
        async with (
            receiver(inbox.answer) as hook,
            service(postgres_url, tmp_path) as live,
            httpx.AsyncClient(base_url=live.base_url, headers=bearer(loader)) as ingest,
            httpx.AsyncClient(base_url=live.base_url, headers=bearer(reader)) as client,
        ):
            subscribed = await client.post(
                "/webhooks",
                json={"url": hook.url(), "events": ["incident.opened", "incident.closed"]},
            )
            assert subscribed.status_code == 201, subscribed.text
            inbox.secret = subscribed.json()["secret"]

            await upload(ingest, "/ingest/business-hours", week.business_hours)
            await upload(ingest, "/ingest/timezones", week.timezones)
            await upload(ingest, "/ingest/polls", week.history)
            first_threshold = await caught_up(client) - timedelta(hours=1)
            for hour, polls in enumerate(week.hours):
                await upload(ingest, "/ingest/polls", polls)
                if hour == KILL_AT_HOUR:
                    killed = await live.kill_a_worker(sessions)
                now = await caught_up(client)
            assert now == max(week.latest.values())

            report = await incidents_csv(client, now)
            deliveries = await deliveries_done(sessions)
            down = (await client.get("/live", params={"limit": 500})).json()
    finally:
        await engine.dispose()

    week_start = now - timedelta(weeks=1)
    expected = announced(report, now=now, first_threshold=first_threshold, latest=week.latest)
    assert sorted(closed_rows(inbox, started_after=week_start)) == sorted(expected)
    # Not a vacuous comparison: short incidents, and long ones of a store open all the time
    # and of one open overnight (a whole shift, across its midnight).
    longest = {
        store: max(float(m) for s, *_, m in expected if s == store) for store, *_ in expected
    }
    assert len(expected) >= 20
    assert min(float(row[3]) for row in expected) < 60
    assert longest[week.always_open] > 24 * 60
    assert longest[week.overnight] > 6 * 60

    # Delivered, each once; retries happened.
    assert deliveries == {ReportStatus.complete: len(inbox.events)}
    assert not inbox.forged
    assert inbox.refused
    assert inbox.refused <= inbox.events.keys()
    closed = [(data["store_id"], _at(data["started_at"])) for data in inbox.data("incident.closed")]
    assert len(set(closed)) == len(closed)

    # Down now at N: the report's incidents going on at N, since their start (but one longer
    # than the week, which the report clips); every incident opened is closed or down now.
    ongoing = {store: _at(started) for store, started, ended, _ in report if _at(ended) == now}
    since = {store["store_id"]: _at(store["since"]) for store in down["stores"]}
    assert down["total"] == len(since)
    assert since.keys() == ongoing.keys()
    assert {s: t for s, t in ongoing.items() if t > week_start} == {
        s: t for s, t in since.items() if ongoing[s] > week_start
    }
    opened = {(data["store_id"], _at(data["started_at"])) for data in inbox.data("incident.opened")}
    assert opened <= set(closed) | set(since.items())
    print(
        f"{len(week.hours)} hours, {len(inbox.events)} events, {len(inbox.refused)} answered 503 "
        f"once, {inbox.duplicates} duplicates dropped; killed {killed}"
    )


def _at(instant: str) -> datetime:
    return datetime.fromisoformat(instant)
