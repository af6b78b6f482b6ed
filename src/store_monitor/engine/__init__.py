"""The pure report engine: Polars frames in, report frame out (no I/O, no clock, no settings)."""

from store_monitor.engine.incident_counts import incident_counts
from store_monitor.engine.live import LiveEvaluation, evaluate_live
from store_monitor.engine.report import Report, compute_report

__all__ = ["LiveEvaluation", "Report", "compute_report", "evaluate_live", "incident_counts"]
