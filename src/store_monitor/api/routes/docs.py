"""The documentation pages, `/docs` (Swagger UI) and `/redoc` (ReDoc), on assets vendored into
this package (see `static/vendor/README.md`): the pages load nothing from another host, so they
work with the network cut."""

from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_PATH: Final = "/static"
"""Where `static_files()` is mounted."""
SWAGGER_UI_VERSION: Final = "5.35.0"
REDOC_VERSION: Final = "2.5.4"
_VENDOR: Final = f"{STATIC_PATH}/vendor"
_STATIC_DIRECTORY: Final = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


def static_files() -> StaticFiles:
    return StaticFiles(directory=_STATIC_DIRECTORY)


@router.get("/docs", response_class=HTMLResponse)
async def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=root + _openapi_url(request),
        title=f"{request.app.title} - Swagger UI",
        # The version in the query: a browser's cached copy is not used after an update.
        swagger_js_url=f"{root}{_VENDOR}/swagger-ui/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}",
        swagger_css_url=f"{root}{_VENDOR}/swagger-ui/swagger-ui.css?v={SWAGGER_UI_VERSION}",
        swagger_favicon_url=_favicon(root),
        oauth2_redirect_url=None,
        # No badge that sends the document to validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get("/redoc", response_class=HTMLResponse)
async def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_redoc_html(
        openapi_url=root + _openapi_url(request),
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{_VENDOR}/redoc/redoc.standalone.js?v={REDOC_VERSION}",
        redoc_favicon_url=_favicon(root),
        with_google_fonts=False,
    )


def _root(request: Request) -> str:
    # Behind a proxy that mounts the app under a prefix, as FastAPI's own pages do.
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def _openapi_url(request: Request) -> str:
    url = request.app.openapi_url
    assert isinstance(url, str), "the docs pages need the app's OpenAPI document"
    return url


def _favicon(root: str) -> str:
    return f"{root}{_VENDOR}/swagger-ui/favicon-32x32.png?v={SWAGGER_UI_VERSION}"
