"""Signing in to the dashboard with an API key, checked by the API's own authenticator, which
opens a session on the server; signing out, which ends it, and signing out everywhere, which ends
every session of the key."""

import logging
from datetime import UTC, datetime
from typing import Annotated, Final

from fastapi import APIRouter, Form, Query, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from store_monitor import access
from store_monitor.settings import AuthMode
from store_monitor.ui.context import FormPageDep, Page, PageDep, Visitor
from store_monitor.web.auth import READ_REPORTS
from store_monitor.web.deps import SessionDep, StateDep
from store_monitor.web.errors import ApiError

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

_PROBLEMS: Final = {
    status.HTTP_401_UNAUTHORIZED: "That key is not valid: unknown, revoked or expired.",
    status.HTTP_403_FORBIDDEN: "That key may not read reports "
    "(it needs the reports scope or an owner).",
}


def _local_path(target: str | None) -> str | None:
    """`target` if it is a path of this site (never another host: `//x` or `/\\x` is one)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return None


def _target(page: Page, next: str | None) -> str:
    return _local_path(next) or page.path_for("reports_page")


@router.get("/ui/sign-in", response_class=HTMLResponse)
async def sign_in_page(
    page: PageDep,
    state: StateDep,
    next: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    if state.settings.auth_mode is AuthMode.off or page.visitor.principal is not None:
        return page.redirect(_target(page, next))
    return page.render(
        "sign_in.html", {"title": "Sign in", "next": _local_path(next) or "", "problem": None}
    )


@router.post("/ui/sign-in", response_class=HTMLResponse)
async def sign_in(
    page: FormPageDep,
    state: StateDep,
    db: SessionDep,
    key: Annotated[str, Form(max_length=300)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Check the key and open a session for it; the key itself is kept nowhere."""
    if state.settings.auth_mode is AuthMode.off:
        return page.redirect_to("reports_page")
    visitor = page.visitor
    try:
        principal = await READ_REPORTS.authenticate(page.request, state, db, key.strip() or None)
    except ApiError as refused:
        if refused.status_code == status.HTTP_429_TOO_MANY_REQUESTS:
            wait = refused.details["retry_after_seconds"]
            problem = f"Too many failed attempts: try again in {wait} s."
        else:
            problem = _PROBLEMS[refused.status_code]
        context = {"title": "Sign in", "next": _local_path(next) or "", "problem": problem}
        return page.render("sign_in.html", context, status_code=refused.status_code)
    assert principal.key_name is not None  # authentication is on: every principal is a key's
    if visitor.session.sign_in is not None:  # signing in again: the session it replaces ends
        await access.end_session(db, visitor.session.sign_in)
    now = datetime.now(UTC)
    token = await access.open_session(
        db, key_name=principal.key_name, now=now, expires_at=now + page.sessions.lifetime
    )
    signed_in = Visitor(session=visitor.session.signed_in(token), new=True, principal=principal)
    return page.as_visitor(signed_in).redirect(_target(page, next))


@router.post("/ui/sign-out", response_class=RedirectResponse)
async def sign_out(page: FormPageDep, db: SessionDep) -> Response:
    """End this session on the server: a copy of its cookie opens nothing after."""
    if (token := page.visitor.session.sign_in) is not None:
        await access.end_session(db, token)
    return _to_sign_in_page(page)


@router.post("/ui/sign-out-everywhere", response_class=RedirectResponse)
async def sign_out_everywhere(page: FormPageDep, db: SessionDep) -> Response:
    """End every session of the signed-in key, in every browser; the key stays valid."""
    if (key_name := page.visitor.key_name) is not None:
        ended = await access.end_key_sessions(db, key_name)
        log.info("signed out everywhere: %d sessions of key %s ended", ended, key_name)
    return _to_sign_in_page(page)


def _to_sign_in_page(page: Page) -> Response:
    signed_out = Visitor(session=page.visitor.session.signed_out(), new=True, principal=None)
    return page.as_visitor(signed_out).redirect_to("sign_in_page")
