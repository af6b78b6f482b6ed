"""The one security-headers policy of every response, API and dashboard alike."""

from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Send

HTML_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
"""Of HTML pages that set no policy of their own (the docs pages do): this host's files only,
no inline script or style, never in a frame."""
REFERRER_POLICY: Final = "same-origin"
"""Not `no-referrer`: with it a browser sends `Origin: null` on a form post, which the
cross-site check (authentication off) would refuse as another site's."""


def secured(send: Send) -> Send:
    """`send` adding the policy's headers to a response that has not set them itself."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            headers.setdefault("X-Content-Type-Options", "nosniff")
            if headers.get("content-type", "").startswith("text/html"):
                headers.setdefault("Content-Security-Policy", HTML_CSP)
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", REFERRER_POLICY)
        await send(message)

    return sending
