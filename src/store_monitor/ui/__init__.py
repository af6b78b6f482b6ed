"""The owners' dashboard: server-rendered pages beside the JSON API, on the same use cases."""

from typing import Final

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from store_monitor.ui import files, live_page, pages, schedules, sign_in, webhooks
from store_monitor.ui.context import HERE, PageError, SignInRequired, to_error_page, to_sign_in

STATIC_PATH: Final = "/ui/static"
_FAVICON: Final = HERE / "static" / "favicon.ico"


async def favicon() -> FileResponse:
    """Where browsers look for a site's icon whatever the page says."""
    return FileResponse(
        _FAVICON, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"}
    )


def install(app: FastAPI) -> None:
    """Add the dashboard to the app: its routes and its static files."""
    app.include_router(pages.router)
    app.include_router(files.router)
    app.include_router(schedules.router)
    app.include_router(live_page.router)
    app.include_router(sign_in.router)
    app.add_api_route("/favicon.ico", favicon, methods=["GET"], include_in_schema=False)
    app.include_router(webhooks.router)
    app.mount(STATIC_PATH, StaticFiles(directory=HERE / "static"), name="ui-static")
    app.add_exception_handler(SignInRequired, to_sign_in)
    app.add_exception_handler(PageError, to_error_page)


__all__ = ["install"]
