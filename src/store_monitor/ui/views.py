"""What the dashboard's lists show, made from the use cases' results: text in the pages' units,
links, the report table's columns and pages, and the little bars of a store's week."""

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final
from urllib.parse import quote, urlencode
from uuid import UUID

from fastapi import Path, Request

from store_monitor.report_types import Report, ReportStatus, StoreFigures, StoreSort
from store_monitor.sources import STORE_ID_RULES
from store_monitor.web.report_status import wire_status

STORE_ID_PATH: Final = Path(**STORE_ID_RULES)


@dataclass(frozen=True, slots=True)
class Column:
    sort: StoreSort
    label: str
    unit: str


COLUMNS: Final = (
    Column(StoreSort.store_id, "Store", ""),
    Column(StoreSort.downtime_last_hour, "Down, last hour", "min"),
    Column(StoreSort.downtime_last_day, "Down, last day", "h"),
    Column(StoreSort.downtime_last_week, "Down, last week", "h"),
    Column(StoreSort.incidents_last_day, "Incidents, last day", ""),
    Column(StoreSort.incidents_last_week, "Incidents, last week", ""),
    Column(StoreSort.uptime_last_hour, "Up, last hour", "min"),
    Column(StoreSort.uptime_last_day, "Up, last day", "h"),
    Column(StoreSort.uptime_last_week, "Up, last week", "h"),
)
"""The report table's sortable columns, downtime and incidents first: what owners look for."""
BARS_AFTER: Final = 6
"""The week's bars come after this many columns, beside the downtime they draw."""
CHANGE_AFTER: Final = 4
"""The change in weekly downtime comes after this many columns: right after the week's downtime."""
CLOSED: Final = "closed"
"""Said of a window without business time, rather than 0.00 up and 0.00 down."""

_STATUS_CLASS: Final = {
    ReportStatus.pending: "pending",
    ReportStatus.running: "running",
    ReportStatus.complete: "complete",
    ReportStatus.failed: "failed",
}
_BAR_HEIGHT: Final = 24
_BAR_STEP: Final = 8
_BAR_WIDTH: Final = 6


def figure(value: float) -> str:
    return f"{value:.2f}"


def up_and_down(uptime: float, downtime: float) -> tuple[str, str]:
    """A window's uptime and downtime as shown; both "closed" when it had no business time."""
    if uptime + downtime == 0:
        return CLOSED, CLOSED
    return figure(uptime), figure(downtime)


def signed(change: float | None) -> str:
    """A change in hours with its sign; a dash when there is nothing to compare with."""
    if change is None:
        return "—"
    if change == 0:
        return "0.00"
    return f"+{change:.2f}" if change > 0 else f"\N{MINUS SIGN}{-change:.2f}"


def readable_minutes(minutes: float) -> str:
    """A length of time as a person reads it: 3,484.43 minutes are "2 d 10 h 4 min"."""
    whole = round(minutes)
    if whole == 0:
        return f"{round(minutes * 60)} s"
    days, rest = divmod(whole, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (mins, "min")]
    return " ".join(f"{value} {unit}" for value, unit in parts if value)


def instant(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def default_order(sort: StoreSort) -> str:
    """Ids A to Z; figures largest first."""
    return "asc" if sort is StoreSort.store_id else "desc"


@dataclass(frozen=True, slots=True)
class ReportLine:
    """A report as the list and the report page show it."""

    id: str
    status: str
    status_class: str
    finished: bool
    created_text: str
    now_text: str
    duration_text: str
    stores: int | None
    incidents: int | None
    error: str | None
    url: str
    status_url: str
    shards_done: int | None
    """With `shards_total`, the progress of a report being computed in shards; else None."""
    shards_total: int | None


def report_line(report: Report, request: Request, *, narrowed: bool) -> ReportLine:
    """`narrowed`: for an owner, who is not told how many stores and incidents all owners have."""
    duration = None
    if report.started_at is not None and report.finished_at is not None:
        duration = (report.finished_at - report.started_at).total_seconds()
    return ReportLine(
        id=str(report.id),
        status=wire_status(report.status).value,
        status_class=_STATUS_CLASS[report.status],
        finished=report.status in (ReportStatus.complete, ReportStatus.failed),
        created_text=instant(report.created_at),
        now_text=instant(report.now) if report.now else "the latest poll",
        duration_text=seconds_text(duration),
        stores=None if narrowed else report.row_count,
        incidents=None if narrowed else report.incident_count,
        error=report.error,
        url=request.url_for("report_page", report_id=report.id).path,
        status_url=request.url_for("report_status", report_id=report.id).path,
        **_progress(report),
    )


def _progress(report: Report) -> dict[str, int | None]:
    total = report.shards_total
    if report.status is not ReportStatus.running or total is None or total < 2:
        return {"shards_done": None, "shards_total": None}
    return {"shards_done": report.shards_done, "shards_total": total}


def status_json(line: ReportLine) -> dict[str, object]:
    return {
        "report_id": line.id,
        "status": line.status,
        "status_class": line.status_class,
        "finished": line.finished,
        "created": line.created_text,
        "now": line.now_text,
        "duration": line.duration_text,
        "stores": line.stores,
        "incidents": line.incidents,
        "error": line.error,
        "url": line.url,
        "status_url": line.status_url,
        "shards_done": line.shards_done,
        "shards_total": line.shards_total,
    }


@dataclass(frozen=True, slots=True)
class HeaderCell:
    column: Column
    url: str
    aria_sort: str
    """`ascending`, `descending` or `none`, for screen readers."""
    arrow: str


@dataclass(frozen=True, slots=True)
class StoreTable:
    """A page of a report's stores: its sort, filter and place, and the links that change them."""

    base: str
    sort: StoreSort
    descending: bool
    filter: str
    page: int
    pages: int
    total: int

    def _url(self, **changes: object) -> str:
        query = {
            "sort": self.sort.value,
            "order": "desc" if self.descending else "asc",
            "q": self.filter,
            "page": self.page,
        } | changes
        kept = {name: value for name, value in query.items() if value not in ("", None)}
        return f"{self.base}?{urlencode(kept)}"

    def headers(self) -> list[HeaderCell]:
        cells = []
        for column in COLUMNS:
            if column.sort is self.sort:
                # The current column again: the other way round.
                order = "asc" if self.descending else "desc"
                aria = "descending" if self.descending else "ascending"
                arrow = "▼" if self.descending else "▲"
            else:
                order, aria, arrow = default_order(column.sort), "none", ""
            cells.append(
                HeaderCell(
                    column=column,
                    url=self._url(sort=column.sort.value, order=order, page=1),
                    aria_sort=aria,
                    arrow=arrow,
                )
            )
        return cells

    def page_url(self, page: int) -> str:
        return self._url(page=page)


@dataclass(frozen=True, slots=True)
class Bar:
    x: int
    up_y: float
    up_height: float
    down_y: float
    down_height: float
    title: str


@dataclass(frozen=True, slots=True)
class StoreLine:
    store_id: str
    url: str
    cells: list[str]
    """The figures, in `COLUMNS` order after the id."""
    change: str
    """Weekly downtime minus the previous comparable report's, signed."""
    bars: list[Bar]
    bars_width: int
    bars_label: str


def store_line(
    store: StoreFigures, request: Request, report_id: UUID, change: float | None
) -> StoreLine:
    """`change`: the store's weekly downtime against the previous comparable report's."""
    values: dict[StoreSort, str] = {
        StoreSort.incidents_last_day: str(store.incidents_last_day),
        StoreSort.incidents_last_week: str(store.incidents_last_week),
    }
    for window in ("hour", "day", "week"):
        up, down = up_and_down(
            getattr(store, f"uptime_last_{window}"), getattr(store, f"downtime_last_{window}")
        )
        values[StoreSort(f"uptime_last_{window}")] = up
        values[StoreSort(f"downtime_last_{window}")] = down
    return StoreLine(
        store_id=store.store_id,
        url=store_path(request, report_id, store.store_id),
        cells=[values[column.sort] for column in COLUMNS[1:]],
        change=signed(change),
        bars=_bars(store),
        bars_width=max(1, len(store.days)) * _BAR_STEP,
        bars_label="Downtime by day: "
        + ", ".join(f"{day.date:%a} {figure(day.downtime_hours)} h" for day in store.days),
    )


def store_path(request: Request, report_id: UUID, store_id: str) -> str:
    """The store page's path, the id percent-encoded as one segment (`url_for` encodes
    nothing: `?`, `#` or `%` in an id would end or change the path)."""
    return request.url_for(
        "store_page", report_id=report_id, store_id=quote(store_id, safe="")
    ).path


def _bars(store: StoreFigures) -> list[Bar]:
    """Each local date as a bar as tall as its business time (against the store's longest
    day), its downtime at the bottom."""
    longest = max((day.uptime_hours + day.downtime_hours for day in store.days), default=0.0)
    if longest <= 0:
        return []
    scale = _BAR_HEIGHT / longest
    bars = []
    for index, day in enumerate(store.days):
        down = day.downtime_hours * scale
        up = day.uptime_hours * scale
        bars.append(
            Bar(
                x=index * _BAR_STEP + 1,
                down_y=round(_BAR_HEIGHT - down, 2),
                down_height=round(down, 2),
                up_y=round(_BAR_HEIGHT - down - up, 2),
                up_height=round(up, 2),
                title=f"{day.date:%a %Y-%m-%d}: {figure(day.downtime_hours)} h down, "
                f"{figure(day.uptime_hours)} h up",
            )
        )
    return bars


@dataclass(frozen=True, slots=True)
class Download:
    label: str
    url: str


class FileKind(StrEnum):
    """The CSV downloads of a report."""

    report = "report"
    incidents = "incidents"
    daily = "daily"


def downloads(request: Request, report_id: UUID, *, store_id: str | None = None) -> list[Download]:
    kinds = [FileKind.report] if store_id is None else []
    kinds += [FileKind.incidents, FileKind.daily]
    labels = {
        FileKind.report: "Report CSV",
        FileKind.incidents: "Incidents CSV",
        FileKind.daily: "Daily figures CSV",
    }
    found = []
    for kind in kinds:
        url = request.url_for("download", report_id=report_id, kind=kind.value).path
        if store_id is not None:
            url += "?" + urlencode({"store_id": store_id})
        found.append(Download(label=labels[kind], url=url))
    return found


_UNSAFE_IN_FILE_NAMES: Final = re.compile(r"[^A-Za-z0-9._-]")


def file_safe(text: str) -> str:
    """`text` fit for a download's file name (a header value): other characters become `_`."""
    return _UNSAFE_IN_FILE_NAMES.sub("_", text)[:100]
