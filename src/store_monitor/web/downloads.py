"""Serving a stored report file: validators (ETag, 304), gzip or identity, a length always.

The file is stored as one gzip member. A client that accepts gzip gets those bytes as they are
(`Content-Encoding: gzip`); any other gets them inflated: a file of a few MiB whole, kept for
the next such download (`InflatedFiles`), a larger one a chunk at a time as it is sent.
Either way `Content-Length` is the exact length sent, so a cut download is detectable.
"""

import asyncio
import hashlib
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Final

from fastapi import Request, Response, status
from fastapi.responses import StreamingResponse

from store_monitor.db.report_files import FileInfo

ROW_COUNT_HEADER: Final = "X-Row-Count"
# Clients may keep a copy (private: an owner key's download holds its owner's stores only) but
# revalidate it, which costs a 304 and one small query: an owner's part follows the memberships.
CACHE_CONTROL: Final = "private, no-cache"
_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS
_INFLATED_CHUNK_BYTES: Final = 64 * 1024
# A 14,000-store report's CSV is 0.7 MB; inflating it costs the event loop about 2.4 ms.
_KEPT_FILE_BYTES: Final = 8 * 1024 * 1024
_KEPT_BYTES: Final = 64 * 1024 * 1024


def entity_tag(info: FileInfo, *, gzipped: bool) -> str:
    """A strong ETag per representation: the gzip-coded bytes are another representation of
    the same file than the plain ones, so their tag differs (RFC 9110, 8.8.3)."""
    return f'"{info.sha256}-gzip"' if gzipped else f'"{info.sha256}"'


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an `Accept-Encoding` value lets us send gzip (RFC 9110, 12.5.3): `gzip` (or
    `x-gzip`, or `*` if gzip is not named) with a quality above 0."""
    qualities: dict[str, float] = {}
    for item in (accept_encoding or "").split(","):
        coding, _, parameters = item.partition(";")
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        qualities.setdefault(coding.strip().lower(), quality)
    for coding in ("gzip", "x-gzip", "*"):
        if coding in qualities:
            return qualities[coding] > 0
    return False


def not_modified(if_none_match: str | None, tag: str) -> bool:
    """Whether `If-None-Match` names `tag` (or is `*`); compared weakly, as RFC 9110 13.1.2 says."""
    if if_none_match is None:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == tag:
            return True
    return False


def select_gzip(request: Request) -> bool:
    return accepts_gzip(request.headers.get("accept-encoding"))


def validators(info: FileInfo, *, gzipped: bool) -> dict[str, str]:
    """The headers a 304 repeats from the 200 it stands for."""
    return {
        "ETag": entity_tag(info, gzipped=gzipped),
        "Cache-Control": CACHE_CONTROL,
        "Vary": "Accept-Encoding",
    }


def not_modified_response(info: FileInfo, *, gzipped: bool) -> Response:
    return Response(
        status_code=status.HTTP_304_NOT_MODIFIED, headers=validators(info, gzipped=gzipped)
    )


class InflatedFiles:
    """Files inflated for clients that do not take gzip, kept by digest for the next such
    download (a report's file is read again and again while it is the latest): files of up to
    `largest_bytes`, `budget_bytes` in all, the least recently sent dropped first. Kept by the
    digest of their bytes, a file cannot go stale. One per process."""

    def __init__(
        self, *, budget_bytes: int = _KEPT_BYTES, largest_bytes: int = _KEPT_FILE_BYTES
    ) -> None:
        self._budget = budget_bytes
        self._largest = min(largest_bytes, budget_bytes)
        self._files: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0

    @property
    def kept_bytes(self) -> int:
        return self._bytes

    async def inflated(self, info: FileInfo, compressed: bytes) -> bytes | None:
        """The file's bytes, kept or inflated now (in a thread); None for a file too large to
        keep, or one whose bytes do not match its digest (sent as streamed, it ends short)."""
        if info.size > self._largest:
            return None
        kept = self._files.get(info.sha256)
        if kept is not None:
            self._files.move_to_end(info.sha256)
            return kept
        data = await asyncio.to_thread(_inflated_whole, info, compressed)
        if data is not None and info.sha256 not in self._files:
            self._files[info.sha256] = data
            self._bytes += len(data)
            while self._bytes > self._budget:
                _, dropped = self._files.popitem(last=False)
                self._bytes -= len(dropped)
        return data


def _inflated_whole(info: FileInfo, compressed: bytes) -> bytes | None:
    parts, size = [], 0
    try:
        for part in inflate(compressed, chunk_bytes=info.size + 1):
            size += len(part)
            if size > info.size:
                return None
            parts.append(part)
    except (zlib.error, ValueError):
        return None
    data = b"".join(parts)
    return data if hashlib.sha256(data).hexdigest() == info.sha256 else None


async def file_response(
    info: FileInfo,
    compressed: bytes,
    *,
    gzipped: bool,
    inflated_files: InflatedFiles,
    media_type: str,
    headers: Mapping[str, str],
) -> Response:
    """The file's 200: the stored gzip bytes if `gzipped`, else inflated (see the module)."""
    common = {**headers, **validators(info, gzipped=gzipped), ROW_COUNT_HEADER: str(info.rows)}
    if gzipped:
        return Response(
            compressed, media_type=media_type, headers={**common, "Content-Encoding": "gzip"}
        )
    data = await inflated_files.inflated(info, compressed)
    if data is not None:
        return Response(data, media_type=media_type, headers=common)
    # Starlette sends a given Content-Length as it is; uvicorn then closes the connection of a
    # body that ends short of it, so the client sees the truncation.
    return StreamingResponse(
        _inflating(compressed),
        media_type=media_type,
        headers={**common, "Content-Length": str(info.size)},
    )


async def _inflating(compressed: bytes) -> AsyncIterator[bytes]:
    for chunk in inflate(compressed):
        yield chunk


def inflate(compressed: bytes, *, chunk_bytes: int = _INFLATED_CHUNK_BYTES) -> Iterator[bytes]:
    """One gzip member's content, at most `chunk_bytes` at a time.

    Raises zlib.error (or ValueError for a member cut short or followed by more data): the
    response then ends short of its Content-Length.
    """
    inflater = zlib.decompressobj(wbits=_GZIP_WBITS)
    pending: bytes | memoryview = memoryview(compressed)
    # Past the member's end the inflater keeps what follows as its unconsumed tail: stop there.
    while pending and not inflater.eof:
        chunk = inflater.decompress(pending, chunk_bytes)
        pending = inflater.unconsumed_tail
        if chunk:
            yield chunk
    rest = inflater.flush()  # what the last bounded call left inside the inflater
    if rest:
        yield rest
    if not inflater.eof or inflater.unused_data or pending:
        raise ValueError("the stored file is not one whole gzip member")
