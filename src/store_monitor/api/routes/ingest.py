"""Upload routes: a polls, business hours, time zones or store owners CSV into the database,
validated first.

The file comes as the request body (`text/csv`) or as the `file` part of a multipart form,
uncompressed: a compressed body is refused with 415 (Polars would expand it past the upload
limit). It is read and stored a chunk at a time as it arrives (a multipart file once spooled),
so memory does not grow with the file. A bad file changes nothing (every chunk is in the
request's transaction) and is answered with 422 naming its line, column and value.
The routes differ only in their source, so each is made from one `_Source`: the file's kind
(its reader, label and header, declared by `store_monitor.sources`) and the route's own words.
"""

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from fastapi import APIRouter, Request, Security, status
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from store_monitor import ingest, live
from store_monitor.api.body_limit import BodyLimit
from store_monitor.api.schemas import IngestResponse
from store_monitor.clock import latest_allowed_poll
from store_monitor.sources import (
    HOURS_CSV,
    OWNERS_CSV,
    POLLS_CSV,
    SHOWN_CHARS,
    TIMEZONES_CSV,
    BlankSource,
    CompressedSource,
    CsvFile,
    SourceError,
    shortened,
)
from store_monitor.web.auth import ADMIN, INGEST
from store_monitor.web.deps import MetricsDep, QueueDep, SessionDep, SettingsDep
from store_monitor.web.errors import DATABASE_UNAVAILABLE, ApiError, documented

router = APIRouter(prefix="/ingest", tags=["ingest"], dependencies=[Security(INGEST)])

_CSV_TYPES: Final = frozenset({"text/csv", "application/csv"})
_MULTIPART: Final = "multipart/form-data"
_FILE_PART: Final = "file"

SourceName = Literal["polls", "business_hours", "timezones", "owners"]


@dataclass(frozen=True, kw_only=True, slots=True)
class _Source:
    name: SourceName
    file: CsvFile
    summary: str
    description: str
    admin_only: bool = False
    """Beyond the router's ingest scope: only admin keys may send this source."""

    @property
    def operation_id(self) -> str:
        return f"ingest_{self.name}"


_SOURCES: Final = (
    _Source(
        name="polls",
        file=POLLS_CSV,
        summary="Add polls (store_status.csv)",
        description="Polls already stored are skipped: sending a file twice adds nothing.",
    ),
    _Source(
        name="business_hours",
        file=HOURS_CSV,
        summary="Replace business hours (menu_hours.csv)",
        description="Each store in the file gets exactly the file's rows as its week; "
        "other stores keep theirs.",
    ),
    _Source(
        name="timezones",
        file=TIMEZONES_CSV,
        summary="Replace time zones (timezones.csv)",
        description="Each store in the file gets the file's time zone; other stores keep theirs.",
    ),
    _Source(
        name="owners",
        file=OWNERS_CSV,
        summary="Replace store owners (store_owners.csv); admin keys only",
        description="Each owner in the file gets exactly the file's stores; other owners keep "
        "theirs. An owner key reads only its owner's stores.",
        admin_only=True,
    ),
)


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


def _route(source: _Source) -> Callable[..., Awaitable[IngestResponse]]:
    async def upload(
        request: Request,
        session: SessionDep,
        settings: SettingsDep,
        metrics: MetricsDep,
        queue: QueueDep,
    ) -> IngestResponse:
        limit = BodyLimit(settings.max_upload_bytes, what="upload", limit_name="max_upload_bytes")
        latest = latest_allowed_poll(settings.clock_skew_seconds)
        async with _upload(request, limit) as (blocks, filename):
            # A file name is the client's text: cut, as quoted values are.
            name = (filename or source.file.label)[:SHOWN_CHARS]
            loading = ingest.load_file(
                session, source.file, blocks, name=name, latest=latest, allow_blank=False
            )
            result = await _ingested(loading)
        # Committed before the live evaluation is queued, or it could start without the data.
        await session.commit()
        await live.queue_next(session, queue)
        return _response(source.name, result, metrics)

    # The route's name (for url_for) and tracebacks say which source it is.
    upload.__name__ = upload.__qualname__ = source.operation_id
    return upload


for _source in _SOURCES:
    router.add_api_route(
        "/" + _source.name.replace("_", "-"),
        _route(_source),
        methods=["POST"],
        operation_id=_source.operation_id,
        response_model=IngestResponse,
        responses=_ERRORS,
        openapi_extra=_upload_body(_source.file.header),
        summary=_source.summary,
        description=_source.description,
        dependencies=[Security(ADMIN)] if _source.admin_only else None,
    )


async def _ingested(loading: Awaitable[ingest.IngestResult]) -> ingest.IngestResult:
    try:
        return await loading
    except CompressedSource as error:
        raise _compressed(error.kind) from error
    except BlankSource as error:
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "empty_upload", "the uploaded file is empty"
        ) from error
    except SourceError as error:
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid_csv", error.message, error.to_dict()
        ) from error
    except ingest.ValueRefused as error:
        store_id = None if error.store_id is None else error.store_id[:SHOWN_CHARS]
        details = {"table": error.table, "store_id": store_id, "reason": error.reason}
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "value_refused", error.message, details
        ) from error


def _response(
    source: SourceName, result: ingest.IngestResult, metrics: MetricsDep
) -> IngestResponse:
    metrics.ingested(source, received=result.received, added=result.added)
    return IngestResponse(
        source=source, rows_received=result.received, rows_added=result.added, stores=result.stores
    )


@contextlib.asynccontextmanager
async def _upload(
    request: Request, limit: BodyLimit
) -> AsyncIterator[tuple[AsyncIterator[bytes], str | None]]:
    """The uploaded file's bytes as they come, within `limit`, and, from a multipart form, its
    name. A form is parsed first: its file is spooled to a temporary file, read back from it."""
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
    body = limit.stream(request)
    if media_type in _CSV_TYPES:
        yield body, None
        return

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
        yield _part_blocks(part), part.filename
    finally:
        await form.close()


async def _part_blocks(part: UploadFile) -> AsyncIterator[bytes]:
    while block := await part.read(ingest.BLOCK_BYTES):
        yield block


def _compressed(kind: str) -> ApiError:
    # Refused rather than expanded: what counts against the upload limit is what is sent.
    return ApiError(
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        "compressed_upload",
        f"the upload is compressed ({kind}); send the CSV uncompressed",
        {"compression": kind},
    )
