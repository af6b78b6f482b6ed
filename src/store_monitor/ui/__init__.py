"""The owners' dashboard: server-rendered pages beside the JSON API, on the same use cases."""

from typing import Final

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from store_monitor.ui import files, pages, sign_in, webhooks
from store_monitor.ui.context import HERE, SignInRequired, to_sign_in

STATIC_PATH: Final = "/ui/static"


def install(app: FastAPI) -> None:
    """Add the dashboard to the app: its routes and its static files."""
    app.include_router(pages.router)
    app.include_router(files.router)
    app.include_router(sign_in.router)
    app.include_router(webhooks.router)
    app.mount(STATIC_PATH, StaticFiles(directory=HERE / "static"), name="ui-static")
    app.add_exception_handler(SignInRequired, to_sign_in)


__all__ = ["install"]
