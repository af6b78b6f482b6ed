"""What a store's page shows: its figures by window and by day, the chart's data, and its
incidents in the store's own time and in UTC."""

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from store_monitor.report_types import Report, StoreDetails
from store_monitor.ui.charts import Series, chart_data
from store_monitor.ui.views import figure, instant, readable_minutes, up_and_down


@dataclass(frozen=True, slots=True)
class FigureRow:
    window: str
    unit: str
    uptime: str
    downtime: str


@dataclass(frozen=True, slots=True)
class DayRow:
    date: str
    weekday: str
    uptime: str
    downtime: str


@dataclass(frozen=True, slots=True)
class IncidentRow:
    local_start: str
    local_end: str
    utc_start: str
    utc_end: str
    minutes: str
    length: str
    """The minutes as a person reads them: "2 d 10 h 4 min"."""


@dataclass(frozen=True, slots=True)
class StorePageView:
    store_id: str
    timezone: str
    figures: list[FigureRow]
    incidents_last_day: int
    incidents_last_week: int
    days: list[DayRow]
    chart_data: str
    """JSON for the chart's script: day labels, uptime and downtime hours."""
    chart_label: str
    incidents: list[IncidentRow]


def store_view(details: StoreDetails, report: Report) -> StorePageView:
    store = details.view.figures
    zone = ZoneInfo(details.timezone)
    days = store.days
    return StorePageView(
        store_id=store.store_id,
        timezone=details.timezone,
        figures=[
            FigureRow(
                "Last hour",
                "minutes",
                *up_and_down(store.uptime_last_hour, store.downtime_last_hour),
            ),
            FigureRow(
                "Last day", "hours", *up_and_down(store.uptime_last_day, store.downtime_last_day)
            ),
            FigureRow(
                "Last week", "hours", *up_and_down(store.uptime_last_week, store.downtime_last_week)
            ),
        ],
        incidents_last_day=store.incidents_last_day,
        incidents_last_week=store.incidents_last_week,
        days=[
            DayRow(
                day.date.isoformat(),
                f"{day.date:%a}",
                *up_and_down(day.uptime_hours, day.downtime_hours),
            )
            for day in days
        ],
        chart_data=chart_data(
            [f"{day.date:%a %m-%d}" for day in days],
            Series("uptime (h)", "up", [day.uptime_hours for day in days]),
            Series("downtime (h)", "down", [day.downtime_hours for day in days]),
        ),
        chart_label=f"Uptime and downtime in hours per local date ({details.timezone}), "
        f"the week to {instant(report.now)}",
        incidents=[
            IncidentRow(
                local_start=_local(incident.started_at, zone),
                local_end=_local(incident.ended_at, zone),
                utc_start=instant(incident.started_at),
                utc_end=instant(incident.ended_at),
                minutes=figure(incident.minutes),
                length=readable_minutes(incident.minutes),
            )
            for incident in details.view.incidents
        ],
    )


def _local(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%a %Y-%m-%d %H:%M:%S %Z")
