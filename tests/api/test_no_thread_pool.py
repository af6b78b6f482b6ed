"""Every route's endpoint and dependencies are coroutines: FastAPI runs a plain `def` one in its
thread pool, a hop to another thread on every request (on a busy machine, a wait for that thread
to be scheduled) for work that never blocks. Blocking work goes to a thread explicitly
(`asyncio.to_thread`), where it is seen."""

import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from store_monitor.web.app import create_app
from support.service import embedded, postgres_with_keys

from .test_head import app_routes


def _dependencies(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _dependencies(dependency)


def _runs_on_the_loop(call: Callable[..., Any]) -> bool:
    function = call if inspect.isroutine(call) else type(call).__call__  # a callable instance
    return inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)


def _names_of_sync(routes: list[APIRoute]) -> set[str]:
    return {
        f"{route.path}: {getattr(call, '__qualname__', repr(call))}"
        for route in routes
        for call in [route.endpoint, *_dependencies(route.dependant)]
        if not _runs_on_the_loop(call)
    }


def test_no_route_runs_a_dependency_in_the_thread_pool(tmp_path: Path) -> None:
    # Both modes: authentication off (embedded) and required (Postgres, keys).
    for settings in (embedded(tmp_path), postgres_with_keys("postgresql+asyncpg://unused/db")):
        routes = [r for r in app_routes(create_app(settings).routes) if isinstance(r, APIRoute)]
        assert len(routes) > 40
        assert _names_of_sync(routes) == set()


def test_the_check_finds_a_sync_dependency() -> None:
    def plain(x: int) -> int:
        return x

    async def coroutine(x: int) -> int:
        return x

    class Instance:
        def __call__(self, x: int) -> int:
            return x

    assert not _runs_on_the_loop(plain)
    assert not _runs_on_the_loop(Instance())
    assert _runs_on_the_loop(coroutine)
