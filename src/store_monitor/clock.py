"""The bound the wall clock puts on new data: read here, where it is used, not in settings."""

from datetime import UTC, datetime, timedelta


def latest_allowed_poll(clock_skew_seconds: float) -> datetime:
    """The latest timestamp a poll, or a report's as_of, may have now: the clock plus the
    allowed skew."""
    return datetime.now(UTC) + timedelta(seconds=clock_skew_seconds)
