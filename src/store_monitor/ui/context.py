"""What every dashboard route gets: the request, who is looking, and how its answer is sent
(templates rendered with the page's common fields, the session cookie, no shared caching)."""

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import Depends, Form, Header, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context

from store_monitor import access
from store_monitor.access import Principal
from store_monitor.sample import SAMPLE_END
from store_monitor.settings import AuthMode
from store_monitor.ui.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    Session,
    Sessions,
    new_session,
    token_matches,
)
from store_monitor.web.cursors import Cursor, decode_cursor
from store_monitor.web.deps import SessionDep, StateDep
from store_monitor.web.errors import error_response

log = logging.getLogger(__name__)

UPLOT_VERSION: Final = "1.6.32"
"""The vendored uPlot (see static/vendor/README.md)."""
ASSET_VERSION: Final = version("store-monitor")
"""In the static files' URLs: a browser's cached copy is not used after an update."""
HERE: Final = Path(__file__).resolve().parent

templates = Jinja2Templates(directory=HERE / "templates")


@pass_context
def _path_for(context: dict[str, Any], name: str, /, **params: Any) -> str:
    """The path of a route (behind a proxy's prefix too): links stay on the page's own origin."""
    request: Request = context["request"]
    return request.url_for(name, **params).path


templates.env.globals["path_for"] = _path_for
templates.env.globals["sample_end"] = f"{SAMPLE_END:%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who is looking: their session (sent with the response when `new`), and the key they
    act with; None until they sign in (always ANYBODY with authentication off)."""

    session: Session
    new: bool
    principal: Principal | None

    @property
    def owner_id(self) -> str | None:
        return None if self.principal is None else self.principal.owner_id

    @property
    def key_name(self) -> str | None:
        """The key signed in with (None with authentication off)."""
        return None if self.principal is None else self.principal.key_name


@dataclass(frozen=True, slots=True)
class Page:
    """A dashboard request's context: the request, the cookie's signer and the visitor."""

    request: Request
    sessions: Sessions
    visitor: Visitor
    sample_loaded: bool
    """Whether the embedded mode's sample is loaded: the pages say their data is a sample."""

    @property
    def principal(self) -> Principal:
        """Who a reader's page (`ReaderPageDep`) acts as: it has one, or it was not served."""
        principal = self.visitor.principal
        assert principal is not None, "not a reader's page"
        return principal

    @property
    def narrowed(self) -> bool:
        """Whether the visitor is an owner, who sees their own stores only."""
        return self.visitor.owner_id is not None

    def as_visitor(self, visitor: Visitor) -> "Page":
        return replace(self, visitor=visitor)

    def render(
        self, template: str, context: dict[str, Any], *, status_code: int = status.HTTP_200_OK
    ) -> Response:
        visitor = self.visitor
        response = templates.TemplateResponse(
            self.request,
            template,
            {
                "csrf_token": visitor.session.csrf,
                "csrf_field": CSRF_FIELD,
                "asset_version": ASSET_VERSION,
                "uplot_version": UPLOT_VERSION,
                "signed_in": visitor.key_name is not None,
                "owner_id": visitor.owner_id,
                "key_name": visitor.key_name,
                "sample_loaded": self.sample_loaded,
                **context,
            },
            status_code=status_code,
        )
        return self.send(response)

    def send(self, response: Response) -> Response:
        """`response` with the visitor's session cookie when it is new; the security headers
        are the app's one policy (`web.headers`)."""
        if self.visitor.new:
            secure = self.request.url.scheme == "https"
            self.sessions.write(response, self.visitor.session, secure=secure)
        # Pages show one person's stores: no shared cache keeps them.
        response.headers["Cache-Control"] = "no-store"
        return response

    def path_for(self, route_name: str, /, **params: Any) -> str:
        """The path of a route, as the templates' `path_for` gives it."""
        return self.request.url_for(route_name, **params).path

    def redirect(self, path: str) -> Response:
        return self.send(RedirectResponse(path, status.HTTP_303_SEE_OTHER))

    def redirect_to(self, route_name: str, /, **params: Any) -> Response:
        """The answer to a form: see the route named `route_name`."""
        return self.redirect(self.path_for(route_name, **params))

    def error(self, status_code: int, title: str, message: str) -> Response:
        """The error page: what went wrong, in the dashboard's frame."""
        return self.render(
            "error.html", {"title": title, "message": message}, status_code=status_code
        )

    def over_rate(self, title: str, message: str, wait: int) -> Response:
        """The 429 page of a rate limiter's refusal, with when to try again."""
        response = self.error(
            status.HTTP_429_TOO_MANY_REQUESTS, title, f"{message} Try again in {wait} s."
        )
        response.headers["Retry-After"] = str(wait)
        return response

    def not_found(self, message: str) -> Response:
        return self.error(status.HTTP_404_NOT_FOUND, "Not found", message)

    def position(self, before: str | None, *, list_path: str) -> Cursor | None:
        """Where a list that pages by `before` starts (None: at its newest), or `PageError`
        if `before` is not a cursor of the API's list at `list_path`."""
        try:
            return None if before is None else decode_cursor(before, path=list_path)
        except ValueError as error:
            raise PageError(
                self, status.HTTP_400_BAD_REQUEST, "Bad page position", str(error)
            ) from error

    def older(self, route_name: str, cursor: str) -> str:
        """The link to the next page of a list that pages by `before` (older entries)."""
        return self.path_for(route_name) + "?" + urlencode({"before": cursor})


class PageError(Exception):
    """An error page, raised where the error is found (a dependency, a helper): the app answers
    it with `Page.error`."""

    def __init__(self, page: Page, status_code: int, title: str, message: str) -> None:
        super().__init__(message)
        self.page = page
        self.status_code = status_code
        self.title = title
        self.message = message


async def to_error_page(request: Request, error: Exception) -> Response:
    assert isinstance(error, PageError)
    return error.page.error(error.status_code, error.title, error.message)


class SignInRequired(Exception):
    """A page needs a signed-in key: answered with a redirect to the sign-in page."""

    def __init__(self, back_to: str) -> None:
        super().__init__("sign in first")
        self.back_to = back_to


async def to_sign_in(request: Request, error: Exception) -> Response:
    assert isinstance(error, SignInRequired)
    if "application/json" in request.headers.get("accept", ""):
        # The page's script: it says so rather than follow a redirect to a form.
        return error_response(
            status.HTTP_401_UNAUTHORIZED, "sign_in_required", "the dashboard session has ended"
        )
    target = request.url_for("sign_in_page").path + "?" + urlencode({"next": error.back_to})
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)


class PageRoute(APIRoute):
    """A page's route: a query its parameters refuse is answered with a page saying why, and
    the way back (422), rather than the API's JSON error; a script asking for JSON still gets it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                if "application/json" in request.headers.get("accept", ""):
                    raise
                return _refused_page(request, error)

        return handle


def _refused_page(request: Request, error: RequestValidationError) -> Response:
    problems = [
        # "sort: Input should be 'store_id', …": the parameter's name, not where it was.
        f"{problem.get('loc', ('request',))[-1]}: {problem.get('msg', 'invalid')}"
        for problem in error.errors()[:5]
    ]
    response = templates.TemplateResponse(
        request,
        "error.html",
        {
            "title": "This page cannot show that",
            "message": "; ".join(problems)[:500],
            "back_url": request.url.path,
            "back_label": "This page as it opens",
            "csrf_token": "",
            "asset_version": ASSET_VERSION,
            "signed_in": False,
        },
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _sessions(state: StateDep) -> Sessions:
    return Sessions(state.session_secret)


async def _page(request: Request, state: StateDep, db: SessionDep) -> Page:
    sessions = _sessions(state)
    found = sessions.read(request)
    session, new = (new_session(), True) if found is None else (found, False)
    page = Page(
        request,
        sessions,
        Visitor(session=session, new=new, principal=None),
        sample_loaded=state.sample_loaded,
    )
    if state.settings.auth_mode is AuthMode.off:
        return page.as_visitor(replace(page.visitor, principal=access.ANYBODY))
    if session.sign_in is None:
        return page
    try:
        # In the request's transaction, as the API's key check: one pooled connection.
        principal = await access.verify_session(db, session.sign_in, now=datetime.now(UTC))
    except access.KeyRejected as rejected:
        log.info("dashboard session of key %s ended: %s", rejected.key_name, rejected.reason.value)
        return page.as_visitor(_signed_out(session))
    except access.SessionEnded:
        log.info("a dashboard session that has ended was presented")
        return page.as_visitor(_signed_out(session))
    return page.as_visitor(replace(page.visitor, principal=principal))


def _signed_out(session: Session) -> Visitor:
    return Visitor(session=session.signed_out(), new=True, principal=None)


PageDep = Annotated[Page, Depends(_page)]
"""Any visitor's page, signed in or not."""


async def _reader(page: PageDep) -> Page:
    """A visitor who may read reports; others are sent to sign in first."""
    if page.visitor.principal is None:
        url = page.request.url
        raise SignInRequired(url.path + (f"?{url.query}" if url.query else ""))
    return page


ReaderPageDep = Annotated[Page, Depends(_reader)]
"""A page of a visitor who may read reports."""


async def _sent_token(
    form: Annotated[str | None, Form(alias=CSRF_FIELD)] = None,
    header: Annotated[str | None, Header(alias=CSRF_HEADER)] = None,
) -> str | None:
    """The CSRF token a state-changing request sends: a form's field, or a script's header."""
    return header or form


SentTokenDep = Annotated[str | None, Depends(_sent_token)]


def _checked(page: Page, token: str | None) -> Page:
    visitor = page.visitor
    if not token_matches(None if visitor.new else visitor.session, token):
        raise PageError(
            page,
            status.HTTP_403_FORBIDDEN,
            "Form expired",
            "This form was not sent from the dashboard's own page, or the page was open too "
            "long. Reload it and try again.",
        )
    return page


async def _form(page: PageDep, token: SentTokenDep) -> Page:
    return _checked(page, token)


async def _reader_form(page: ReaderPageDep, token: SentTokenDep) -> Page:
    return _checked(page, token)


FormPageDep = Annotated[Page, Depends(_form)]
"""Any visitor's page, for a form that carried the session's CSRF token (else a 403 `PageError`)."""
ReaderFormPageDep = Annotated[Page, Depends(_reader_form)]
"""A reader's page, for a form that carried the session's CSRF token (else a 403 `PageError`)."""
