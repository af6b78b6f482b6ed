"""The documentation pages, `/docs` (Swagger UI) and `/redoc` (ReDoc), on assets vendored into
this package (see `static/vendor/README.md`): the pages load nothing from another host, so they
work with the network cut. Each page's Content-Security-Policy admits its own inline script by
hash, and nothing else inline."""

import base64
import hashlib
import re
from pathlib import Path
from typing import Final, TypedDict

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
_FAVICON: Final = "swagger-ui/favicon-32x32.png"
_INLINE_SCRIPT: Final = re.compile(rb"<script>(.*?)</script>", re.DOTALL)

router = APIRouter(include_in_schema=False)


def static_files() -> StaticFiles:
    return StaticFiles(directory=_STATIC_DIRECTORY)


@router.get("/docs", response_class=HTMLResponse)
async def swagger_ui(request: Request) -> HTMLResponse:
    page = get_swagger_ui_html(
        **_document(request, "Swagger UI"),
        swagger_js_url=_asset(request, "swagger-ui/swagger-ui-bundle.js", SWAGGER_UI_VERSION),
        swagger_css_url=_asset(request, "swagger-ui/swagger-ui.css", SWAGGER_UI_VERSION),
        swagger_favicon_url=_asset(request, _FAVICON, SWAGGER_UI_VERSION),
        oauth2_redirect_url=None,
        # No badge that sends the document to validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )
    return _with_policy(page, style_src="'self'")


@router.get("/redoc", response_class=HTMLResponse)
async def redoc(request: Request) -> HTMLResponse:
    page = get_redoc_html(
        **_document(request, "ReDoc"),
        redoc_js_url=_asset(request, "redoc/redoc.standalone.js", REDOC_VERSION),
        redoc_favicon_url=_asset(request, _FAVICON, SWAGGER_UI_VERSION),
        with_google_fonts=False,
    )
    # ReDoc styles itself with <style> elements it writes at run time (styled-components).
    return _with_policy(page, style_src="'self' 'unsafe-inline'")


class _Document(TypedDict):
    openapi_url: str
    title: str


def _document(request: Request, viewer: str) -> _Document:
    """The app's OpenAPI document, and the page's title, for either viewer."""
    url = request.app.openapi_url
    assert isinstance(url, str), "the docs pages need the app's OpenAPI document"
    return _Document(openapi_url=_root(request) + url, title=f"{request.app.title} - {viewer}")


def _asset(request: Request, path: str, version: str) -> str:
    # The version in the query: a browser's cached copy is not used after an update.
    return f"{_root(request)}{_VENDOR}/{path}?v={version}"


def _with_policy(page: HTMLResponse, *, style_src: str) -> HTMLResponse:
    scripts = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(bytes(page.body))
    )
    page.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'self' {scripts}; style-src {style_src}; "
        "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src 'self' blob:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
    return page


def _root(request: Request) -> str:
    # Behind a proxy that mounts the app under a prefix, as FastAPI's own pages do.
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")
