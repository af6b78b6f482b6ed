"""The dashboard's session cookie: signed, expiring, HttpOnly, SameSite=Strict.

It carries the synchronizer token that every state-changing form must send back (CSRF), and,
once someone signs in with a key, the token of their session on the server (`access`): every
request looks it up, with its key, so signing out, signing out everywhere and revoking the key
end it at once, whoever holds a copy of the cookie. Never the key's secret.
"""

import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Final

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

COOKIE_NAME: Final = "store_monitor_session"
CSRF_FIELD: Final = "csrf_token"
"""The form field (or `X-CSRF-Token` header) a state-changing request sends the token in."""
CSRF_HEADER: Final = "X-CSRF-Token"
LIFETIME: Final = timedelta(hours=8)
"""Of the cookie and of the session on the server alike."""
_SALT: Final = "store-monitor.dashboard.session"


@dataclass(frozen=True, slots=True)
class Session:
    csrf: str
    sign_in: str | None = None
    """The server-side session's token once signed in; None before (or with authentication
    off)."""

    def signed_in(self, sign_in: str) -> "Session":
        # A fresh CSRF token too: one seen before signing in is not trusted after.
        return Session(csrf=_new_token(), sign_in=sign_in)

    def signed_out(self) -> "Session":
        return replace(self, csrf=_new_token(), sign_in=None)


def new_session() -> Session:
    return Session(csrf=_new_token())


class Sessions:
    """Reads and writes the cookie, signed with `secret` (the server's secret key)."""

    def __init__(self, secret: bytes, *, lifetime: timedelta = LIFETIME) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)
        self._lifetime = lifetime

    @property
    def lifetime(self) -> timedelta:
        return self._lifetime

    def read(self, request: Request) -> Session | None:
        """The request's session; None without a cookie, or one that is forged or expired."""
        cookie = request.cookies.get(COOKIE_NAME)
        if not cookie:
            return None
        try:
            payload = self._serializer.loads(cookie, max_age=int(self._lifetime.total_seconds()))
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(payload, dict):
            return None
        csrf, sign_in = payload.get("csrf"), payload.get("sign_in")
        if not isinstance(csrf, str) or not (sign_in is None or isinstance(sign_in, str)):
            return None
        return Session(csrf=csrf, sign_in=sign_in)

    def write(self, response: Response, session: Session, *, secure: bool) -> None:
        response.set_cookie(
            COOKIE_NAME,
            self._serializer.dumps({"csrf": session.csrf, "sign_in": session.sign_in}),
            max_age=int(self._lifetime.total_seconds()),
            path="/",
            httponly=True,
            samesite="strict",
            secure=secure,
        )


def token_matches(session: Session | None, presented: str | None) -> bool:
    """Whether a request's token is its session's (compared in constant time)."""
    if session is None or not presented:
        return False
    return hmac.compare_digest(session.csrf.encode(), presented.encode())


def _new_token() -> str:
    return secrets.token_urlsafe(32)
