"""Upload routes: a polls, business hours or time zones CSV into the database, validated first.

The file comes as the request body (`text/csv`) or as the `file` part of a multipart form,
uncompressed: a compressed body is refused with 415 (Polars would expand it past the upload
limit). A bad file changes nothing and is answered with 422 naming its line, column and value.
"""

import asyncio
from collections.abc import AsyncGenerator, Callable, Coroutine
from functools import partial
from typing import Any, Final, Literal

import polars as pl
from fastapi import APIRouter, Request, status
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from store_monitor import ingest
from store_monitor.api.deps import MetricsDep, SessionDep, SettingsDep
from store_monitor.api.errors import (
    DATABASE_UNAVAILABLE,
    ApiError,
    documented,
    payload_too_large,
)
from store_monitor.api.schemas import IngestResponse
from store_monitor.sources import (
    SHOWN_CHARS,
    SourceError,
    compression,
    read_business_hours,
    read_polls,
    read_timezones,
    shortened,
)

router = APIRouter(prefix="/ingest", tags=["ingest"])

_CSV_TYPES: Final = frozenset({"text/csv", "application/csv"})
_MULTIPART: Final = "multipart/form-data"
_FILE_PART: Final = "file"

Source = Literal["polls", "business_hours", "timezones"]
Reader = Callable[..., pl.DataFrame]


def _upload_body(example_header: str) -> dict[str, Any]:
    """The OpenAPI request body: the route reads the raw request, so FastAPI cannot infer it."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}, "example": example_header + "\n"},
                _MULTIPART: {
                    "schema": {
                        "type": "object",
                        "properties": {_FILE_PART: {"type": "string", "format": "binary"}},
                        "required": [_FILE_PART],
                    }
                },
            },
        }
    }


_ERRORS: Final = documented(
    {
        400: "A malformed multipart form (`invalid_multipart`).",
        413: "The upload is over the size limit (`payload_too_large`).",
        415: "Neither text/csv nor multipart/form-data (`unsupported_media_type`), or a "
        "compressed body or file: gzip, zlib, zstd or any Content-Encoding (`compressed_upload`).",
        422: "The file is empty (`empty_upload`), the form has no `file` part (`missing_file`), "
        "the CSV is invalid (`invalid_csv`: the details name the line, column and value), "
        "or the database refused one of its values (`value_refused`: the details name the store).",
        503: DATABASE_UNAVAILABLE,
    }
)


@router.post(
    "/polls",
    operation_id="ingest_polls",
    response_model=IngestResponse,
    responses=_ERRORS,
    openapi_extra=_upload_body("store_id,status,timestamp_utc"),
    summary="Add polls (store_status.csv)",
)
async def ingest_polls(
    request: Request, session: SessionDep, settings: SettingsDep, metrics: MetricsDep
) -> IngestResponse:
    """Polls already stored are skipped: sending a file twice adds nothing."""
    # Later than the clock plus the skew is a broken clock: such a poll would become every
    # report's `now`.
    read = partial(read_polls, latest=settings.latest_allowed_poll)
    frame = await _read_upload(request, settings.max_upload_bytes, read, "polls")
    result = await _ingested(ingest.ingest_polls(session, frame))
    return _response("polls", result, metrics)


@router.post(
    "/business-hours",
    operation_id="ingest_business_hours",
    response_model=IngestResponse,
    responses=_ERRORS,
    openapi_extra=_upload_body("store_id,dayOfWeek,start_time_local,end_time_local"),
    summary="Replace business hours (menu_hours.csv)",
)
async def ingest_business_hours(
    request: Request, session: SessionDep, settings: SettingsDep, metrics: MetricsDep
) -> IngestResponse:
    """Each store in the file gets exactly the file's rows as its week; other stores keep theirs."""
    frame = await _read_upload(
        request, settings.max_upload_bytes, read_business_hours, "business hours"
    )
    result = await _ingested(ingest.ingest_business_hours(session, frame))
    return _response("business_hours", result, metrics)


@router.post(
    "/timezones",
    operation_id="ingest_timezones",
    response_model=IngestResponse,
    responses=_ERRORS,
    openapi_extra=_upload_body("store_id,timezone_str"),
    summary="Replace time zones (timezones.csv)",
)
async def ingest_timezones(
    request: Request, session: SessionDep, settings: SettingsDep, metrics: MetricsDep
) -> IngestResponse:
    """Each store in the file gets the file's time zone; other stores keep theirs."""
    frame = await _read_upload(request, settings.max_upload_bytes, read_timezones, "timezones")
    result = await _ingested(ingest.ingest_timezones(session, frame))
    return _response("timezones", result, metrics)


async def _ingested(
    loading: Coroutine[Any, Any, ingest.IngestResult],
) -> ingest.IngestResult:
    try:
        return await loading
    except ingest.ValueRefused as error:
        store_id = None if error.store_id is None else error.store_id[:SHOWN_CHARS]
        details = {"table": error.table, "store_id": store_id, "reason": error.reason}
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "value_refused", error.message, details
        ) from error


def _response(source: Source, result: ingest.IngestResult, metrics: MetricsDep) -> IngestResponse:
    metrics.ingested(source, received=result.received, added=result.added)
    return IngestResponse(
        source=source, rows_received=result.received, rows_added=result.added, stores=result.stores
    )


async def _read_upload(
    request: Request, limit: int, read: Reader, default_name: str
) -> pl.DataFrame:
    data, name = await _upload(request, limit)
    kind = compression(data[:4])
    if kind is not None:
        raise _compressed(kind)
    if not data.strip():
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "empty_upload", "the uploaded file is empty"
        )
    try:
        # Parsing is CPU work (Polars, off the GIL): a thread keeps the event loop serving.
        # A file name is the client's text: cut, as quoted values are.
        return await asyncio.to_thread(read, data, name=(name or default_name)[:SHOWN_CHARS])
    except SourceError as error:
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid_csv", error.message, error.to_dict()
        ) from error


async def _upload(request: Request, limit: int) -> tuple[bytes, str | None]:
    """The uploaded file's bytes and, from a multipart form, its name; at most `limit` bytes."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in _CSV_TYPES and media_type != _MULTIPART:
        raise ApiError(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            f"send the CSV as text/csv or as the {_FILE_PART!r} part of {_MULTIPART}, "
            f"not {shortened(media_type) if media_type else 'no content type'}",
            {
                "content_type": media_type[:SHOWN_CHARS] or None,
                "accepted": [*sorted(_CSV_TYPES), _MULTIPART],
            },
        )
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        raise _compressed(encoding[:SHOWN_CHARS])
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = _capped(request, limit)
    if media_type in _CSV_TYPES:
        return b"".join([chunk async for chunk in body]), None

    parser = MultiPartParser(request.headers, body, max_files=1, max_fields=10)
    try:
        form = await parser.parse()
    except MultiPartException as error:
        raise ApiError(
            status.HTTP_400_BAD_REQUEST, "invalid_multipart", f"malformed form: {error.message}"
        ) from error
    try:
        part = form.get(_FILE_PART)
        if not isinstance(part, UploadFile):
            raise ApiError(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "missing_file",
                f"the form has no file part named {_FILE_PART!r}",
            )
        return await part.read(), part.filename
    finally:
        await form.close()


async def _capped(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    # Counted as it arrives: a missing or false Content-Length cannot get more than `limit` in.
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _too_large(limit)
        yield chunk


def _compressed(kind: str) -> ApiError:
    # Refused rather than expanded: what counts against the upload limit is what is sent.
    return ApiError(
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        "compressed_upload",
        f"the upload is compressed ({kind}); send the CSV uncompressed",
        {"compression": kind},
    )


def _too_large(limit: int) -> ApiError:
    return payload_too_large(limit, what="upload", limit_name="max_upload_bytes")
