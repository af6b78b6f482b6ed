"""The documentation pages work offline: `/docs` and `/redoc` load only assets this package
serves, with the right content types; `/` leads to `/docs`."""

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from store_monitor.web.app import create_app
from support.service import embedded

_ASSET_TYPES = {
    ".js": {"text/javascript", "application/javascript"},
    ".css": {"text/css"},
    ".png": {"image/png"},
}


@pytest.fixture
async def docs_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    # The pages need no database or queue: the app without its lifespan.
    transport = httpx.ASGITransport(app=create_app(embedded(tmp_path)))
    async with httpx.AsyncClient(transport=transport, base_url="http://store-monitor") as client:
        yield client


class _Links(HTMLParser):
    """Every URL a page makes the browser load: scripts, style sheets, icons."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        self.urls += [value for name, value in attrs if name == wanted and value]


def _links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_nothing_from_other_hosts(
    docs_client: httpx.AsyncClient, page: str
) -> None:
    response = await docs_client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    # Not a CDN, a font service or a validator: no absolute URL at all.
    assert re.findall(r"(?:https?:)?//[\w.-]+", response.text) == []
    assert "/openapi.json" in response.text

    assets = _links(response.text)
    assert {Path(url.partition("?")[0]).suffix for url in assets} >= {".js", ".png"}
    for url in assets:
        asset = await docs_client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
        media_type = asset.headers["content-type"].partition(";")[0]
        assert media_type in _ASSET_TYPES[Path(url.partition("?")[0]).suffix], url


async def test_redoc_loads_no_image_from_another_host(docs_client: httpx.AsyncClient) -> None:
    # ReDoc's bundle shows Redocly's logo from its CDN; the vendored copy's address fails at
    # once instead (see static/vendor/README.md), so the CSP has nothing to block.
    html = (await docs_client.get("/redoc")).text
    [script] = [url for url in _links(html) if url.partition("?")[0].endswith(".js")]
    bundle = (await docs_client.get(script)).text
    assert re.findall(r'src:"(?:https?:)?//', bundle) == []
    assert 'src:"data:,"' in bundle


async def test_swagger_ui_gets_its_style_sheet_and_the_document(
    docs_client: httpx.AsyncClient,
) -> None:
    html = (await docs_client.get("/docs")).text
    assert any(url.partition("?")[0].endswith("/swagger-ui.css") for url in _links(html))
    document = await docs_client.get("/openapi.json")
    assert document.status_code == 200
    assert document.json()["servers"][0]["url"] == "/"


async def test_unknown_static_file_is_a_404(docs_client: httpx.AsyncClient) -> None:
    response = await docs_client.get("/static/vendor/swagger-ui/nothing.js")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
