"""What the pages show of trends across reports: a report's summary beside the previous
comparable report, and a store's weekly downtime in each report as a chart's data."""

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from fastapi import Request

from store_monitor.trends import StoreInReport, Summary, WeekTotals
from store_monitor.ui.charts import Series, chart_data
from store_monitor.ui.views import figure, instant, signed, store_path


@dataclass(frozen=True, slots=True)
class SummaryRow:
    label: str
    current: str
    previous: str
    change: str


@dataclass(frozen=True, slots=True)
class WorstStoreLine:
    store_id: str
    url: str
    downtime: str
    incidents: int
    change: str


@dataclass(frozen=True, slots=True)
class SummaryView:
    rows: list[SummaryRow]
    previous_text: str | None
    """When the previous comparable report's windows end; None without one."""
    previous_url: str | None
    worst: list[WorstStoreLine]


def _percent(week: WeekTotals) -> str:
    percent = week.downtime_percent
    return "—" if percent is None else f"{percent:.2f} %"


def _of(week: WeekTotals) -> list[str]:
    return [
        f"{figure(week.downtime_hours)} h",
        _percent(week),
        f"{week.stores_with_downtime} of {week.stores}",
        str(week.incidents),
    ]


_LABELS = (
    "Business hours lost",
    "Share of business time",
    "Stores with downtime",
    "Incidents",
)


def summary_view(summary: Summary, request: Request, report_id: UUID) -> SummaryView:
    current = _of(summary.week)
    previous = ["—"] * len(_LABELS) if summary.previous_week is None else _of(summary.previous_week)
    change = ["—"] * len(_LABELS)
    if summary.change is not None:
        moved = summary.change
        change = [
            f"{signed(moved.downtime_hours)} h",
            "—" if moved.downtime_percent is None else f"{signed(moved.downtime_percent)} pts",
            f"{moved.stores_with_downtime:+d}",
            f"{moved.incidents:+d}",
        ]
    before = summary.previous
    return SummaryView(
        rows=[
            SummaryRow(label, *values)
            for label, *values in zip(_LABELS, current, previous, change, strict=True)
        ],
        previous_text=None if before is None else instant(before.now),
        previous_url=(
            None if before is None else request.url_for("report_page", report_id=before.id).path
        ),
        worst=[
            WorstStoreLine(
                store_id=store.store_id,
                url=store_path(request, report_id, store.store_id),
                downtime=figure(store.downtime_hours),
                incidents=store.incidents,
                change=signed(store.downtime_change_hours),
            )
            for store in summary.worst
        ],
    )


@dataclass(frozen=True, slots=True)
class HistoryView:
    chart_data: str
    """JSON for the chart's script, oldest report first."""
    chart_label: str
    reports: int


def history_view(history: Sequence[StoreInReport]) -> HistoryView:
    """`history`: newest first, as `trends.store_history` reads it."""
    oldest_first = list(reversed(history))
    return HistoryView(
        chart_data=chart_data(
            [f"{entry.report.now:%m-%d %H:%M}" for entry in oldest_first],
            Series("downtime (h)", "down", [entry.downtime_last_week for entry in oldest_first]),
        ),
        chart_label="Downtime in the last week, in hours, of each complete report (UTC time its "
        "windows end at)",
        reports=len(history),
    )
