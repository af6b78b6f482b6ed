"""The owners' dashboard: server-rendered pages beside the JSON API, on the same use cases."""

from store_monitor.ui.pages import install

__all__ = ["install"]
