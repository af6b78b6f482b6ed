"""Authentication and scopes: the one dependency every protected route declares.

`Authenticator(scopes, owners=...)` answers 401 (with `WWW-Authenticate: Bearer`) when a request
has no valid key, 403 when its key lacks the scope, 429 when its address failed too often, and
otherwise gives the route the request's `Principal`. The key comes from `Authorization: Bearer`,
or from the dashboard's sign-in form, which calls `authenticate` with it.
"""

import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import Depends, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor import access
from store_monitor.db.models import KeyScope
from store_monitor.settings import AuthMode
from store_monitor.web.deps import AppState, SessionDep, StateDep
from store_monitor.web.errors import ApiError

log = logging.getLogger(__name__)

_bearer = HTTPBearer(
    scheme_name="ApiKey",
    description="An API key, `sm_...`, made by `store-monitor keys create`.",
    auto_error=False,
)
_CHALLENGE: Final = 'Bearer realm="store-monitor"'
_VERIFIED: Final = "store_monitor_principal"
_REASONS: Final = {
    access.Rejection.malformed: "the API key is malformed (keys start with 'sm_')",
    access.Rejection.unknown: "the API key is unknown",
    access.Rejection.revoked: "the API key was revoked",
    access.Rejection.expired: "the API key has expired",
}

AUTH_ERRORS: Final = {
    401: "No API key, or an unknown, revoked or expired one (`missing_key`, `invalid_key`).",
    403: "The API key's scope does not allow this (`insufficient_scope`).",
    429: "Too many failed authentications from this address (`too_many_failures`); "
    "see Retry-After.",
}
"""The answers of a protected route, for `documented`."""


class Authenticator:
    """A dependency admitting keys with one of `scopes` (admin always), and owner keys if
    `owners`; the route gets the request's `Principal` (everybody's, with auth off)."""

    def __init__(self, *scopes: KeyScope, owners: bool = False) -> None:
        self.scopes = frozenset(scopes)
        self.owners = owners

    async def __call__(
        self,
        request: Request,
        state: StateDep,
        session: SessionDep,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> access.Principal:
        if state.settings.auth_mode is AuthMode.off:
            return access.ANYBODY
        return await self.authenticate(request, state, session, _presented_secret(bearer))

    async def authenticate(
        self, request: Request, state: AppState, session: AsyncSession, secret: str | None
    ) -> access.Principal:
        """The principal of the key `secret`, or an ApiError (429, 401, 403) saying why not;
        failures count against the client's address. The dashboard's sign-in calls it too."""
        address = request.client.host if request.client else "unknown"
        wait = state.limiter.retry_after(address)
        if wait is not None:
            log.warning("authentication refused: too many failures from %s", address)
            raise ApiError(
                status.HTTP_429_TOO_MANY_REQUESTS,
                "too_many_failures",
                f"too many failed authentications from this address; retry in {wait} s",
                {"retry_after_seconds": wait},
                headers={"Retry-After": str(wait)},
            )
        if secret is None:
            state.limiter.failed(address)
            log.warning("authentication failed: no API key", extra={"client": address})
            raise ApiError(
                status.HTTP_401_UNAUTHORIZED,
                "missing_key",
                "this needs an API key: send 'Authorization: Bearer sm_...'",
                headers={"WWW-Authenticate": _CHALLENGE},
            )
        # A route may need two checks (its router's and its own): the key is verified once.
        principal = getattr(request.state, _VERIFIED, None)
        if not isinstance(principal, access.Principal):
            principal = await self._verified(state, session, secret, address)
            setattr(request.state, _VERIFIED, principal)
        if not principal.allows(self.scopes, owners=self.owners):
            log.warning(
                "authorization failed: key %s lacks the scope",
                principal.key_name,
                extra=_key_fields(principal.key_name, principal.key_prefix, address),
            )
            raise ApiError(
                status.HTTP_403_FORBIDDEN,
                "insufficient_scope",
                f"the key {principal.key_name!r} may not do this; it needs {self._needed()}",
                {"needed": sorted(self._wanted())},
                headers={"WWW-Authenticate": f'{_CHALLENGE}, error="insufficient_scope"'},
            )
        return principal

    async def _verified(
        self, state: AppState, session: AsyncSession, secret: str, address: str
    ) -> access.Principal:
        assert state.settings.secret_key is not None  # checked at start-up
        server_key = state.settings.secret_key.get_secret_value().encode()
        try:
            # In the request's transaction (the route's own session): one connection, and the
            # key's last use is committed with the request.
            return await access.verify(
                session, server_key=server_key, secret=secret, now=datetime.now(UTC)
            )
        except access.KeyRejected as rejected:
            state.limiter.failed(address)
            log.warning(
                "authentication failed: API key %s",
                rejected.reason.value,
                extra=_key_fields(rejected.key_name, rejected.key_prefix, address),
            )
            raise ApiError(
                status.HTTP_401_UNAUTHORIZED,
                "invalid_key",
                _REASONS[rejected.reason],
                headers={"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
            ) from None

    def _wanted(self) -> set[str]:
        return {scope.value for scope in self.scopes | {KeyScope.admin}} | (
            {"owner"} if self.owners else set()
        )

    def _needed(self) -> str:
        return " or ".join(f"{name!r}" for name in sorted(self._wanted()))


async def presented_key_hash(
    state: StateDep, bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> bytes | None:
    """The stored hash of the key the request presents, if it presents a well-formed one; no
    database is asked, so whether it is a valid key is still unknown."""
    secret = _presented_secret(bearer)
    if state.settings.secret_key is None or secret is None:
        return None
    if not secret.startswith(access.SECRET_PREFIX) or len(secret) > access.MAX_SECRET_CHARS:
        return None
    return access.secret_hash(state.settings.secret_key.get_secret_value().encode(), secret)


def _presented_secret(bearer: HTTPAuthorizationCredentials | None) -> str | None:
    if bearer is None or not bearer.credentials.strip():
        return None
    return bearer.credentials.strip()


def _key_fields(name: str | None, prefix: str | None, address: str) -> dict[str, Any]:
    # Never the secret: a key's name, or the first characters it is listed with.
    return {"key_name": name, "key_prefix": prefix, "client": address}


INGEST: Final = Authenticator(KeyScope.ingest)
READ_REPORTS: Final = Authenticator(KeyScope.reports, owners=True)
MANAGE_REPORTS: Final = Authenticator(KeyScope.reports)
"""Deleting reports: owner keys, which only trigger and read, may not."""
ADMIN: Final = Authenticator()
METRICS: Final = Authenticator(KeyScope.metrics)

ReportReaderDep = Annotated[access.Principal, Security(READ_REPORTS)]
