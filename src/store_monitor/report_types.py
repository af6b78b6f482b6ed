"""The stored report types and reads the edges show, named here so that the dashboard reads them
from the use-case layer rather than from the database package."""

from store_monitor.db.models import Report, ReportStatus
from store_monitor.db.report_views import StoreFigures, StorePage, StoreSort, store_page
from store_monitor.reports import StoreDetails

__all__ = [
    "Report",
    "ReportStatus",
    "StoreDetails",
    "StoreFigures",
    "StorePage",
    "StoreSort",
    "store_page",
]
