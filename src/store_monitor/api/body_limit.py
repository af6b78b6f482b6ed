"""The one cap on request bodies, for every route that reads one: at most `limit` bytes get in,
counted as they arrive, and more is a 413 in the API's error shape."""

from collections.abc import AsyncGenerator

from fastapi import Request, status

from store_monitor.web.errors import ApiError


class BodyLimit:
    """`limit` bytes of body at most; `what` names the body in the 413's message and
    `limit_name` keys the limit in its details (e.g. the setting that sets it)."""

    def __init__(self, limit: int, *, what: str, limit_name: str) -> None:
        self.limit = limit
        self.what = what
        self.limit_name = limit_name

    def stream(self, request: Request) -> AsyncGenerator[bytes, None]:
        """The body a chunk at a time. A declared Content-Length over the limit is refused
        at once; a missing or false one cannot get more than the limit in either."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            raise self.too_large()
        return self._counted(request)

    async def read(self, request: Request) -> bytes:
        return b"".join([chunk async for chunk in self.stream(request)])

    def too_large(self) -> ApiError:
        return ApiError(
            status.HTTP_413_CONTENT_TOO_LARGE,
            "payload_too_large",
            f"the {self.what} is larger than the limit of {self.limit} bytes",
            {self.limit_name: self.limit},
        )

    async def _counted(self, request: Request) -> AsyncGenerator[bytes, None]:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > self.limit:
                raise self.too_large()
            yield chunk
