"""`HEAD` is answered wherever `GET` is, as that GET's status and headers without a body."""

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from uuid import uuid4

from starlette.routing import BaseRoute, Route

from store_monitor.web.app import create_app
from support.service import embedded, serve

# A value for each path parameter the GET routes have.
_PARAMETERS = {
    "report_id": str(uuid4()),
    "store_id": "store-1",
    "kind": "report",
    "schedule_id": str(uuid4()),
    "webhook_id": str(uuid4()),
}


def app_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        # FastAPI keeps an included router as one entry (none of ours has a prefix).
        included = getattr(route, "original_router", None)
        yield from app_routes(included.routes) if included is not None else [route]


def _get_paths(tmp_path: Path) -> list[str]:
    app = create_app(embedded(tmp_path))
    paths = [
        re.sub(r"\{(\w+)(?::\w+)?\}", lambda name: _PARAMETERS[name[1]], route.path)
        for route in app_routes(app.routes)
        if isinstance(route, Route) and "GET" in (route.methods or ())
    ]
    # The static files' mounts answer HEAD themselves; one of each, to be sure.
    return [*paths, "/static/vendor/redoc/LICENSE", "/ui/static/vendor/README.md"]


async def test_head_answers_as_get_on_every_get_route(tmp_path: Path) -> None:
    paths = _get_paths(tmp_path)
    assert {"/healthz", "/readyz", "/", "/docs", "/reports", "/openapi.json"} <= set(paths)
    async with serve(embedded(tmp_path)) as client:
        for path in paths:
            get = await client.get(path)
            head = await client.head(path)
            assert head.status_code == get.status_code != 405, path
            assert head.content == b"", path
            assert head.headers.get("content-type") == get.headers.get("content-type"), path
            if "content-length" in get.headers and path != "/metrics":
                assert head.headers["content-length"] == get.headers["content-length"], path


async def test_head_on_a_post_only_route_is_still_405(tmp_path: Path) -> None:
    async with serve(embedded(tmp_path)) as client:
        head = await client.head("/trigger_report")
    assert head.status_code == 405
