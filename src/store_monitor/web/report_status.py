"""A report's status as clients see it, in the API and on the dashboard alike."""

from enum import StrEnum

from store_monitor.db.models import ReportStatus


class WireReportStatus(StrEnum):
    Pending = "Pending"
    Running = "Running"
    Complete = "Complete"
    Failed = "Failed"


_WIRE_STATUS = {
    ReportStatus.pending: WireReportStatus.Pending,
    ReportStatus.running: WireReportStatus.Running,
    ReportStatus.complete: WireReportStatus.Complete,
    ReportStatus.failed: WireReportStatus.Failed,
}


def wire_status(status: ReportStatus) -> WireReportStatus:
    return _WIRE_STATUS[status]


def stored_status(status: WireReportStatus) -> ReportStatus:
    return ReportStatus(status.value.lower())
