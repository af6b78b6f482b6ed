"""The API's request ids and Prometheus metrics: the ASGI layers that give each request an id and
count it, and the per-app registry that `GET /metrics` exposes."""

import logging
import re
import time
from collections.abc import Iterable, Sequence
from typing import Any, Final
from uuid import uuid4

from fastapi import FastAPI
from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, HistogramMetricFamily, Metric
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from store_monitor import report_stats
from store_monitor.logs import request_context
from store_monitor.work.queue import WorkQueue

log = logging.getLogger(__name__)

REQUEST_ID_HEADER: Final = "X-Request-ID"
# Ids from clients or proxies go into logs and a response header: letters, digits and a few
# separators (UUIDs, hex, base64, ULIDs...), nothing that could break a header or a log line.
_VALID_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")

CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4
"""The classic Prometheus text format, which every Prometheus version reads."""

_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_UNMATCHED: Final = "unmatched"
"""The route label of a request no route matched: raw paths would make a series per URL."""

_REQUEST_SECONDS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
REPORT_SECONDS: Final = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
INGEST_KINDS: Final = ("polls", "business_hours", "timezones", "owners")


class Metrics:
    """The API process's metrics, in a registry of their own (not prometheus_client's global one,
    so that several apps, e.g. in tests, keep apart)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "store_monitor_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "store_monitor_http_request_duration_seconds",
            "Time to answer an HTTP request, streamed body included.",
            ["method", "route", "status"],
            buckets=_REQUEST_SECONDS,
            registry=self.registry,
        )
        self.rows_received = Counter(
            "store_monitor_ingest_rows_received",
            "Rows of uploaded CSV files accepted by validation, by kind of file.",
            ["kind"],
            registry=self.registry,
        )
        self.rows_added = Counter(
            "store_monitor_ingest_rows_added",
            "Rows stored by uploads (new polls; the replacing hours and zones), by kind of file.",
            ["kind"],
            registry=self.registry,
        )
        for kind in INGEST_KINDS:
            # Zero from the start, so that a rate over the first upload is not lost.
            self.rows_received.labels(kind)
            self.rows_added.labels(kind)
        self._readings = _Readings()
        self.registry.register(self._readings)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method if method in _METHODS else "other", route, str(status))
        self.requests.labels(*labels).inc()
        self.request_seconds.labels(*labels).observe(seconds)

    def ingested(self, kind: str, *, received: int, added: int) -> None:
        self.rows_received.labels(kind).inc(received)
        self.rows_added.labels(kind).inc(added)

    async def refresh(self, session: AsyncSession, queue: WorkQueue) -> None:
        """Read what other processes change (reports, the queue) for the next exposition, in
        the scrape's own session (one pooled connection per request).

        A reading that fails is left out of the exposition (and logged) rather than failing the
        scrape: the process's own metrics are still worth having, and `/readyz` tells why.
        """
        try:
            self._readings.stats = await report_stats.report_stats(
                session, duration_bounds=REPORT_SECONDS
            )
        except Exception as error:
            log.warning("metrics: cannot read the reports: %s", error)
            self._readings.stats = None
            await session.rollback()
        try:
            self._readings.queue_depth = await queue.depth()
        except Exception as error:
            log.warning("metrics: cannot read the queue's depth: %s", error)
            self._readings.queue_depth = None

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Readings:
    """A collector of the values `Metrics.refresh` read from the database and the queue.

    Read at scrape time because the database is the truth: reports are created by any API
    process and run by worker processes, which expose no metrics of their own. For the same
    reason the report duration histogram is computed from the reports table (the last attempt's
    `finished_at - started_at` of every complete report) rather than observed where reports run:
    it is then the same, and complete, whichever API process is scraped.
    """

    def __init__(self) -> None:
        self.stats: report_stats.ReportStats | None = None
        self.queue_depth: int | None = None

    def describe(self) -> Iterable[Metric]:
        return self._families(None, None)

    def collect(self) -> Iterable[Metric]:
        return self._families(self.stats, self.queue_depth)

    def _families(
        self, stats: report_stats.ReportStats | None, queue_depth: int | None
    ) -> list[Metric]:
        by_status = GaugeMetricFamily(
            "store_monitor_reports", "Reports by status, in the database.", labels=["status"]
        )
        duration = HistogramMetricFamily(
            "store_monitor_report_duration_seconds",
            "Time the complete reports' last attempt took, from the database.",
            labels=[],
        )
        depth = GaugeMetricFamily(
            "store_monitor_queue_depth", "Report jobs queued or running, not yet finished."
        )
        if stats is not None:
            for status, count in stats.by_status.items():
                by_status.add_metric([status.value], count)
            buckets: Sequence[tuple[str, float]] = [
                *((str(float(bound)), count) for bound, count in stats.duration_buckets),
                ("+Inf", stats.duration_count),
            ]
            duration.add_metric([], buckets, stats.duration_sum)
        if queue_depth is not None:
            depth.add_metric([], queue_depth)
        # After a failed reading a family has no sample (HELP and TYPE only): no value rather
        # than a stale one.
        return [by_status, duration, depth]


class InstrumentedApp(FastAPI):
    """FastAPI with request ids and request metrics as its outermost layers.

    Outside even Starlette's error middleware (which `add_middleware` cannot reach): a request
    that ends in an unexpected error still gets its id in the 500 response and on the error's
    log line, and is counted with status 500.
    """

    def __init__(self, *, metrics: Metrics, **options: Any) -> None:
        super().__init__(**options)
        self.metrics = metrics

    def build_middleware_stack(self) -> ASGIApp:
        return RequestIds(RequestMetrics(super().build_middleware_stack(), self.metrics))


class RequestIds:
    """Each HTTP request gets an id: its `X-Request-ID` header if valid, else a new one. The id
    is echoed in the response's `X-Request-ID` and is on every log line written while serving it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        value = incoming_request_id(scope) or uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = value
            await send(message)

        with request_context(value):
            await self.app(scope, receive, send_with_id)


def incoming_request_id(scope: Scope) -> str | None:
    """The request's own id, if it has one that is valid."""
    name = REQUEST_ID_HEADER.lower().encode()
    for key, raw in scope["headers"]:
        if key == name:
            value = raw.decode("latin-1")
            return value if _VALID_REQUEST_ID.fullmatch(value) else None
    return None


class RequestMetrics:
    """Counts and times each HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # If the app fails before answering, the server answers 500.
        status = 500

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_recording)
        finally:
            # The router puts the matched route in the request's scope, which is this dict.
            route = getattr(scope.get("route"), "path_format", None) or _UNMATCHED
            self.metrics.observe_request(
                scope["method"], route, status, time.perf_counter() - started
            )
