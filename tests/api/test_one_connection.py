"""A request holds at most one pooled connection at a time, on every route and page: an app
whose pool is exactly one connection answers each of them, a few at once, without a pool
timeout (a route that took a second connection while holding the first would wait for itself).
Keys are required, so that the key check uses the request's session as in production."""

import asyncio
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.routing import BaseRoute, Route

from store_monitor.db.models import KeyScope
from store_monitor.synthetic import GeneratedFiles
from store_monitor.web.app import create_app
from support.service import (
    arq_worker,
    bearer,
    create_key,
    empty_postgres,
    postgres_with_keys,
    serve,
    wait_until_final,
)

_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_AT_ONCE = 3
"""Copies of each request sent together."""


@dataclass(frozen=True, slots=True)
class _Call:
    method: str
    route: str
    """The route's path template: what `every route` is checked against."""
    params: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    data: dict[str, str] | None = None
    content: bytes | None = None

    def url(self) -> str:
        # A parameter nobody named (a route added later): any value reaches its key check.
        return re.sub(r"\{(\w+)\}", lambda name: self.params.get(name[1], "x"), self.route)


def _routes(routes: Iterable[BaseRoute]) -> Iterator[Route]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)
        elif isinstance(route, Route):
            yield route


async def test_every_route_and_page_answers_with_a_pool_of_one_connection(
    postgres_url: str, data_files: GeneratedFiles
) -> None:
    await empty_postgres(postgres_url)
    secret = await create_key(postgres_url, "admin", scope=KeyScope.admin)
    admin = bearer(secret)
    # The worker computes with a pool of its own; the app under test has exactly one connection.
    worker_settings = postgres_with_keys(postgres_url)
    settings = worker_settings.model_copy(
        update={
            "database_pool_size": 1,
            "database_max_overflow": 0,
            "database_pool_timeout_seconds": 5.0,
        }
    )
    async with arq_worker(worker_settings), serve(settings) as client:
        uploads = {
            "/ingest/polls": data_files.store_status.read_bytes(),
            "/ingest/business-hours": data_files.menu_hours.read_bytes(),
            "/ingest/timezones": data_files.timezones.read_bytes(),
        }
        for path, body in uploads.items():
            loaded = await client.post(
                path, content=body, headers={"Content-Type": "text/csv", **admin}
            )
            assert loaded.status_code == 200, loaded.text
        report_id = (await client.post("/trigger_report", headers=admin)).json()["report_id"]
        client.headers.update(admin)
        assert (await wait_until_final(client, report_id))["status"] == "Complete"
        del client.headers["Authorization"]
        store = data_files.store_status.read_text().splitlines()[1].split(",")[0]
        spare = (await client.post("/trigger_report", headers=admin)).json()["report_id"]

        sign_in_page = await client.get("/ui/sign-in")
        form = {"key": secret, "next": "", "csrf_token": _token(sign_in_page.text)}
        assert (await client.post("/ui/sign-in", data=form)).status_code == 303
        csrf = _token((await client.get("/")).text)

        calls = _calls(report_id, spare, store, admin, csrf, secret, uploads)
        app_routes = {
            (method, route.path_format)
            for route in _routes(create_app(settings).routes)
            for method in route.methods or ()
            if method != "HEAD"
        }
        # A route added later is called too, with made-up parameters: its key check and
        # session count as much as a good answer.
        # Signing out (here, or everywhere) ends the session the calls use: both come last.
        ending = {("POST", "/ui/sign-out"), ("POST", "/ui/sign-out-everywhere")}
        called = {(call.method, call.route) for call in calls} | ending
        calls += [
            _Call(method, path, params=_MADE_UP, headers=admin)
            for method, path in sorted(app_routes - called)
        ]
        for call in calls:
            answers = await asyncio.gather(*(_send(client, call) for _ in range(_AT_ONCE)))
            for answer in answers:
                assert answer.status_code < 500, (call.method, call.url(), answer.text[:300])
        # Signed in again above: the session's token is a new one.
        for ends in ("/ui/sign-out", "/ui/sign-out-everywhere"):
            sign_in_page = await client.get("/ui/sign-in")
            form = {"key": secret, "next": "", "csrf_token": _token(sign_in_page.text)}
            assert (await client.post("/ui/sign-in", data=form)).status_code == 303
            token = {"csrf_token": _token((await client.get("/")).text)}
            assert (await client.post(ends, data=token)).status_code == 303
    assert called <= app_routes, "a call names a route the app does not have"


_MADE_UP = {"report_id": "00000000-0000-4000-8000-000000000000", "store_id": "x", "kind": "daily"}


def _calls(
    report_id: str,
    spare: str,
    store: str,
    admin: dict[str, str],
    csrf: str,
    secret: str,
    uploads: dict[str, bytes],
) -> list[_Call]:
    report = {"report_id": report_id}
    gzip = {**admin, "Accept-Encoding": "gzip"}
    identity = {**admin, "Accept-Encoding": "identity"}
    narrowed = {"store_id": store}
    calls = [
        _Call("GET", "/healthz"),
        _Call("GET", "/readyz"),
        _Call("GET", "/metrics", headers=admin),
        _Call("GET", "/openapi.json", headers=admin),
        _Call("GET", "/docs", headers=admin),
        _Call("GET", "/redoc", headers=admin),
        _Call("POST", "/trigger_report", headers=admin),
        _Call("POST", "/trigger_report", headers={**admin, "Idempotency-Key": "one"}),
        _Call("GET", "/reports", headers=admin),
        _Call("GET", "/reports/{report_id}", params=report, headers=admin),
        _Call("GET", "/get_report/{report_id}", params=report, headers=gzip),
        _Call("GET", "/get_report/{report_id}", params=report, headers=identity),
        _Call("GET", "/reports/{report_id}/csv", params=report, headers=gzip),
        _Call("GET", "/reports/{report_id}/csv", params=report, headers=identity),
        _Call("GET", "/reports/{report_id}/incidents", params=report, headers=admin),
        _Call("GET", "/reports/{report_id}/daily", params=report, headers=admin),
        _Call(
            "GET", "/reports/{report_id}/incidents", params=report, query=narrowed, headers=admin
        ),
        _Call("GET", "/reports/{report_id}/daily", params=report, query=narrowed, headers=admin),
        _Call(
            "GET",
            "/reports/{report_id}/stores/{store_id}",
            params={**report, "store_id": store},
            headers=admin,
        ),
        _Call("DELETE", "/reports/{report_id}", params={"report_id": spare}, headers=admin),
        *(
            _Call("POST", path, content=body, headers={"Content-Type": "text/csv", **admin})
            for path, body in uploads.items()
        ),
        _Call(
            "POST",
            "/ingest/owners",
            content=f"owner_id,store_id\nbrand,{store}\n".encode(),
            headers={"Content-Type": "text/csv", **admin},
        ),
        # The dashboard, signed in by its cookie.
        _Call("GET", "/"),
        _Call("GET", "/ui/sign-in"),
        _Call("POST", "/ui/sign-in", data={"key": secret, "next": "", "csrf_token": csrf}),
        _Call("POST", "/ui/reports", headers={"X-CSRF-Token": csrf, "Accept": "application/json"}),
        _Call("GET", "/ui/reports/{report_id}", params=report),
        _Call("GET", "/ui/reports/{report_id}/status.json", params=report),
        _Call(
            "GET", "/ui/reports/{report_id}/stores/{store_id}", params={**report, "store_id": store}
        ),
    ]
    for kind in ("report", "incidents", "daily"):
        files = {**report, "kind": kind}
        calls.append(_Call("GET", "/ui/reports/{report_id}/files/{kind}.csv", params=files))
        if kind != "report":
            calls.append(
                _Call(
                    "GET", "/ui/reports/{report_id}/files/{kind}.csv", params=files, query=narrowed
                )
            )
    return calls


async def _send(client: httpx.AsyncClient, call: _Call) -> httpx.Response:
    extra: dict[str, Any] = {}
    if call.data is not None:
        extra["data"] = call.data
    if call.content is not None:
        extra["content"] = call.content
    return await client.request(
        call.method, call.url(), params=call.query, headers=call.headers, **extra
    )


def _token(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page carries no CSRF token"
    return found[1]
