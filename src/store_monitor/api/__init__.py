"""The JSON API: its routes, wire schemas and documentation pages, added to the app by `install`."""

from fastapi import FastAPI

from store_monitor.api.routes import docs, health, metrics
from store_monitor.api.routes import ingest as ingest_routes
from store_monitor.api.routes import live as live_routes
from store_monitor.api.routes import reports as report_routes
from store_monitor.api.routes import schedules as schedule_routes
from store_monitor.api.routes import trends as trend_routes
from store_monitor.api.routes import webhooks as webhook_routes
from store_monitor.web.auth import AUTH_ERRORS
from store_monitor.web.errors import documented


def install(app: FastAPI) -> None:
    """Add the API to the app: its routes (protected ones documented as such) and the docs
    pages' static files."""
    protected = documented(AUTH_ERRORS)
    app.include_router(report_routes.trigger_router, responses=protected)
    app.include_router(report_routes.router, responses=protected)
    app.include_router(trend_routes.router, responses=protected)
    app.include_router(ingest_routes.router, responses=protected)
    app.include_router(schedule_routes.router, responses=protected)
    app.include_router(live_routes.router, responses=protected)
    app.include_router(webhook_routes.router, responses=protected)
    webhook_routes.document_events(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(docs.router)
    app.mount(docs.STATIC_PATH, docs.static_files(), name="static")


__all__ = ["install"]
