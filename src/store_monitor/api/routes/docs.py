"""`GET /docs`: Swagger UI under a Content-Security-Policy that admits its one inline script by
hash, and nothing else inline."""

import base64
import hashlib
import re
from typing import Final
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

# FastAPI's own defaults; vendored copies served by the app itself would be 'self'.
SWAGGER_JS_URL: Final = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"
SWAGGER_CSS_URL: Final = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"
FAVICON_URL: Final = "https://fastapi.tiangolo.com/img/favicon.png"
_INLINE_SCRIPT: Final = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def docs_router(*, openapi_url: str, title: str, path: str = "/docs") -> APIRouter:
    """The page is the same for every request: built, and its policy computed, once."""
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=SWAGGER_JS_URL,
        swagger_css_url=SWAGGER_CSS_URL,
        swagger_favicon_url=FAVICON_URL,
        oauth2_redirect_url=None,
    )
    body = bytes(page.body)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(body)
    )
    policy = (
        f"default-src 'none'; script-src 'self' {_origin(SWAGGER_JS_URL)} {hashes}; "
        f"style-src 'self' {_origin(SWAGGER_CSS_URL)}; "
        f"img-src 'self' data: {_origin(FAVICON_URL)}; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
    router = APIRouter(include_in_schema=False)

    @router.get(path)
    async def docs() -> HTMLResponse:
        return HTMLResponse(body, headers={"Content-Security-Policy": policy})

    return router


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""
