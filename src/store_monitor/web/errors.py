"""The API's one error shape, `{"error": {"code", "message", "details"}}`, and the handlers
that give it to every failure: our own, Starlette's HTTP errors, and request validation."""

import logging
from collections.abc import Mapping
from typing import Any, Final

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import exc
from starlette.exceptions import HTTPException
from starlette.routing import Match

from store_monitor.db.quotas import QuotaReached
from store_monitor.db.session import database_unavailable
from store_monitor.sources import SHOWN_CHARS

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    # Always sent: required in the schema, so that generated clients need not check for it.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    code: str = Field(examples=["report_not_found"])
    """Stable and machine-readable; the message is for people and may change."""
    message: str = Field(examples=["no report with id 8c7e3a52-..."])
    details: dict[str, Any] = Field(default_factory=dict)


_EXAMPLE_MESSAGE = (
    "store_status.csv, line 3, column 'status': 'activ' is not 'active' or 'inactive'"
)


class ErrorResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "invalid_csv",
                        "message": _EXAMPLE_MESSAGE,
                        "details": {
                            "source": "store_status.csv",
                            "line": 3,
                            "column": "status",
                            "value": "activ",
                            "value_length": 5,
                            "reason": "'activ' is not 'active' or 'inactive'",
                            "message": _EXAMPLE_MESSAGE,
                        },
                    }
                }
            ]
        }
    )

    error: ErrorBody


class ApiError(Exception):
    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers


def invalid_request(location: str, message: str) -> ApiError:
    """422 for a request that passed its schema but not a rule checked later (e.g. against the
    clock), in the shape of the schema's own errors."""
    problem = {"location": location, "message": message, "type": "value_error"}
    return ApiError(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        "invalid_request",
        f"{location}: {message}",
        {"errors": [problem]},
    )


def not_found(thing: str, message: str, **ids: str) -> ApiError:
    """404 for a `thing` that is not there (or that the key may not see: not told apart), coded
    `{thing}_not_found`, with the ids asked for as its details."""
    return ApiError(status.HTTP_404_NOT_FOUND, f"{thing}_not_found", message, dict(ids))


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=details or {}))
    return JSONResponse(body.model_dump(mode="json"), status_code=status_code, headers=headers)


def documented(errors: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the errors a route may answer with: status → when."""
    return {
        code: {"model": ErrorResponse, "description": description}
        for code, description in errors.items()
    }


DATABASE_UNAVAILABLE: Final = (
    "The database cannot be reached or is overloaded (`database_unavailable`); try again later."
)
"""The 503 of every route that uses the database, for `documented`."""


# Codes for the HTTP errors raised by Starlette and FastAPI themselves (unknown path, method...).
_HTTP_CODES = {
    status.HTTP_400_BAD_REQUEST: "bad_request",
    status.HTTP_404_NOT_FOUND: "not_found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    status.HTTP_406_NOT_ACCEPTABLE: "not_acceptable",
    status.HTTP_413_CONTENT_TOO_LARGE: "payload_too_large",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
}


async def _api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return error_response(
        error.status_code, error.code, error.message, error.details, error.headers
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    code = _HTTP_CODES.get(error.status_code, f"http_{error.status_code}")
    message = error.detail if isinstance(error.detail, str) else code.replace("_", " ")
    headers = error.headers
    if error.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return error_response(error.status_code, code, message, headers=headers)


def _allowed_methods(request: Request) -> str:
    # Starlette's 405 names the methods of the first route on the path only; a path served by
    # several routes (GET and DELETE /reports/{report_id}) has them all.
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


# Errors listed, and characters kept of each text, in a validation error's body.
_MAX_PROBLEMS: Final = 20


def _cut(text: str) -> str:
    if len(text) <= SHOWN_CHARS:
        return text
    return f"{text[:SHOWN_CHARS]}... ({len(text):,} characters)"


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    # Only the JSON-safe parts of pydantic's errors: `input` and `ctx` may hold any object. A
    # location may hold a client's key of any length: cut, as values are.
    problems = [
        {
            "location": _cut(".".join(str(part) for part in problem.get("loc", ()))),
            "message": _cut(problem.get("msg", "")),
            "type": problem.get("type", ""),
        }
        for problem in error.errors()[:_MAX_PROBLEMS]
    ]
    first = problems[0] if problems else {"location": "request", "message": "invalid"}
    return error_response(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        "invalid_request",
        f"{first['location']}: {first['message']}",
        {"errors": problems},
    )


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    if not database_unavailable(error):
        raise error  # a bug or bad data, not an outage: the catch-all's 500
    # Its first line: the driver's message, without the statement and its parameters.
    reason = str(error).partition("\n")[0]
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, reason)
    return error_response(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "database_unavailable",
        "the database is unavailable; try again later",
    )


async def _quota_reached(request: Request, error: Exception) -> JSONResponse:
    # Raised by a use case, whichever route made the thing: one answer for every quota.
    assert isinstance(error, QuotaReached)
    return error_response(status.HTTP_409_CONFLICT, error.code, str(error), {"limit": error.limit})


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return error_response(
        status.HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "internal server error"
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(QuotaReached, _quota_reached)
    app.add_exception_handler(exc.DBAPIError, _database_error)
    app.add_exception_handler(exc.TimeoutError, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
