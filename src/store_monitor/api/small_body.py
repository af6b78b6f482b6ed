"""The report routes' class: each reads at most `MAX_BODY_BYTES` of body before FastAPI does."""

from collections.abc import Callable, Coroutine
from typing import Any, Final

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import Message, Receive

from store_monitor.api.body_limit import BodyLimit

MAX_BODY_BYTES: Final = 64 * 1024
"""Of any request to these routes: the trigger's JSON options are a few dozen bytes."""
_BODY_LIMIT: Final = BodyLimit(MAX_BODY_BYTES, what="request body", limit_name="max_body_bytes")


class SmallBodyRoute(APIRoute):
    """A route that reads at most `MAX_BODY_BYTES` of body, answering 413 beyond.

    FastAPI reads a body whole before it validates anything; so does Starlette's own limit,
    whose 413 is plain text. This one reads the body first, counting as it comes (a missing or
    false Content-Length gets no more in), then hands it to FastAPI.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def read_then_handle(request: Request) -> Response:
            body = await _BODY_LIMIT.read(request)
            return await handle(Request(request.scope, _replay(body, request.receive)))

        return read_then_handle


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` with the body, already read, handed out again first."""
    pending: bytes | None = body

    async def replaying() -> Message:
        nonlocal pending
        if pending is None:
            return await receive()  # what comes after the body, e.g. the client disconnecting
        message: Message = {"type": "http.request", "body": pending, "more_body": False}
        pending = None
        return message

    return replaying
