"""`HEAD` wherever `GET` is served: the GET route answers, and its body is not sent.

FastAPI's routes answer only the methods they declare, and declaring HEAD on each would put a
second operation per path in the OpenAPI document; load balancers and `curl -I` send HEAD.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """Serves a `HEAD` request as the `GET` of the same URL, with its status and headers (its
    `Content-Length` too) and an empty body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        ended = False

        async def headers_only(message: Message) -> None:
            nonlocal ended
            if message["type"] != "http.response.body":
                await send(message)
            elif not ended:
                # One empty, final body message; the GET's own body is dropped as it comes.
                ended = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET"}, receive, headers_only)
