"""The HTTP API: `create_app(settings)` builds the FastAPI application."""

from store_monitor.api.app import create_app

__all__ = ["create_app"]
