"""Wire schemas of the reads across reports: a report's summary against the previous comparable
report, and a store's history."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from store_monitor.api.schemas import StoreFigures
from store_monitor.api.wire import EXAMPLE_FIGURES, EXAMPLE_NOW, EXAMPLE_REPORT_ID, response_config
from store_monitor.db.models import Report
from store_monitor.trends import StoreInReport, Summary


class WeekSummary(BaseModel):
    """A report's last week over the stores the key may see (an owner key: the owner's)."""

    model_config = response_config()

    stores: int = Field(description="Stores in the report.")
    downtime_hours: float = Field(
        description="Business hours lost: the sum of the stores' `downtime_last_week`, in hours."
    )
    uptime_hours: float = Field(description="The sum of the stores' `uptime_last_week`, in hours.")
    downtime_percent: float | None = Field(
        description="Downtime as a percentage (0 to 100) of business time (uptime + downtime); "
        "null when the stores had no business time in the week."
    )
    stores_with_downtime: int = Field(description="Stores with any downtime in the week.")
    incidents: int = Field(description="Incidents in the week, all the stores together.")


class WeekSummaryChange(BaseModel):
    """This report's figures minus the previous comparable report's."""

    model_config = response_config()

    downtime_hours: float = Field(description="Hours; positive: more downtime than before.")
    downtime_percent: float | None = Field(
        description="Percentage points; null when either report had no business time."
    )
    stores_with_downtime: int
    incidents: int


class WorstStoreSummary(BaseModel):
    model_config = response_config()

    store_id: str
    downtime_hours: float = Field(description="The store's `downtime_last_week`, in hours.")
    uptime_hours: float = Field(description="The store's `uptime_last_week`, in hours.")
    incidents: int = Field(description="The store's incidents in the week.")
    previous_downtime_hours: float | None = Field(
        description="The store's `downtime_last_week` in the previous comparable report, in "
        "hours; null without one, or when the store was not in it."
    )
    downtime_change_hours: float | None = Field(
        description="`downtime_hours - previous_downtime_hours`; null when the latter is."
    )


class PreviousReport(BaseModel):
    model_config = response_config()

    report_id: UUID
    now: datetime = Field(description="The instant its windows end at.")
    week: WeekSummary


class ReportSummary(BaseModel):
    """`GET /reports/{report_id}/summary`: the whole picture of a complete report's week."""

    model_config = response_config(
        {
            "report_id": EXAMPLE_REPORT_ID,
            "now": EXAMPLE_NOW,
            "week": {
                "stores": 40,
                "downtime_hours": 61.5,
                "uptime_hours": 3938.5,
                "downtime_percent": 1.54,
                "stores_with_downtime": 12,
                "incidents": 31,
            },
            "worst_stores": [
                {
                    "store_id": "8419537941919820732",
                    "downtime_hours": 9.75,
                    "uptime_hours": 130.25,
                    "incidents": 4,
                    "previous_downtime_hours": 2.5,
                    "downtime_change_hours": 7.25,
                }
            ],
            "previous": {
                "report_id": "5a7d1e0c-3b2f-4e6a-8c9d-1f0e2d3c4b5a",
                "now": "2023-01-18T18:00:00Z",
                "week": {
                    "stores": 40,
                    "downtime_hours": 70.0,
                    "uptime_hours": 3930.0,
                    "downtime_percent": 1.75,
                    "stores_with_downtime": 15,
                    "incidents": 36,
                },
            },
            "change": {
                "downtime_hours": -8.5,
                "downtime_percent": -0.21,
                "stores_with_downtime": -3,
                "incidents": -5,
            },
        }
    )

    report_id: UUID
    now: datetime | None = Field(description="The instant the report's windows end at.")
    week: WeekSummary
    worst_stores: list[WorstStoreSummary] = Field(
        description="Up to five stores with the most downtime in the week, worst first (ties by "
        "store id); only stores with some downtime."
    )
    previous: PreviousReport | None = Field(
        description="The latest complete report whose `now` is at least 6 days earlier, over "
        "the same key's stores; null if there is none."
    )
    change: WeekSummaryChange | None = Field(
        description="`week` minus `previous.week`; null without a previous report."
    )

    @classmethod
    def of(cls, report: Report, summary: Summary) -> "ReportSummary":
        previous = None
        if summary.previous is not None and summary.previous_week is not None:
            previous = PreviousReport(
                report_id=summary.previous.id,
                now=summary.previous.now,
                week=WeekSummary.model_validate(summary.previous_week),
            )
        return cls(
            report_id=report.id,
            now=report.now,
            week=WeekSummary.model_validate(summary.week),
            worst_stores=[WorstStoreSummary.model_validate(store) for store in summary.worst],
            previous=previous,
            change=None
            if summary.change is None
            else WeekSummaryChange.model_validate(summary.change),
        )


class StoreHistoryEntry(BaseModel):
    model_config = response_config()

    report_id: UUID
    now: datetime = Field(description="The instant the report's windows end at.")
    figures: StoreFigures

    @classmethod
    def of(cls, entry: StoreInReport) -> "StoreHistoryEntry":
        return cls(
            report_id=entry.report.id,
            now=entry.report.now,
            figures=StoreFigures.model_validate(entry, from_attributes=True),
        )


class StoreHistory(BaseModel):
    """`GET /stores/{store_id}/history`: a store's figures in each complete report."""

    model_config = response_config(
        {
            "store_id": "8419537941919820732",
            "reports": [
                {"report_id": EXAMPLE_REPORT_ID, "now": EXAMPLE_NOW, "figures": EXAMPLE_FIGURES}
            ],
        }
    )

    store_id: str
    reports: list[StoreHistoryEntry] = Field(
        description="One entry per complete report that has the store, newest `now` first."
    )
