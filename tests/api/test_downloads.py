"""Downloads of a finished report: the stored file, gzip-coded as stored or plain, with its
length, row count and a strong ETag (304 when current); replaced by a recomputation, gone when
the report fails; and sent without a database connection, so status reads never wait."""

import asyncio
import contextlib
import gzip
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store_monitor import report_runs
from store_monitor.db.models import Report, ReportFile
from store_monitor.db.report_files import FileInfo, encode_csv
from store_monitor.settings import Settings
from store_monitor.synthetic import GeneratedFiles
from store_monitor.web.app import create_app
from store_monitor.web.deps import STATE_KEY, AppState
from store_monitor.web.downloads import (
    InflatedFiles,
    accepts_gzip,
    file_response,
    inflate,
    not_modified,
)
from store_monitor.work.lease import Runner
from support.service import (
    TEST_HOST,
    app_state,
    arq_worker,
    empty_postgres,
    expected_csv,
    postgres_mode,
    upload_all,
    wait_until_final,
)

ROUTES = ("/get_report/{}", "/reports/{}/csv")
PLAIN = {"Accept-Encoding": "identity"}
GZIP = {"Accept-Encoding": "gzip"}


async def complete_report(client: httpx.AsyncClient, files: GeneratedFiles) -> str:
    await upload_all(client, files)
    report_id: str = (await client.post("/trigger_report")).json()["report_id"]
    metadata = await wait_until_final(client, report_id)
    assert metadata["status"] == "Complete", metadata
    return report_id


async def raw_body(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response:
    """The response with its body as sent, not decoded (in `response.extensions["raw"]`)."""
    async with client.stream("GET", url, headers=headers) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    response.extensions["raw"] = raw
    return response


@pytest.mark.parametrize("route", ROUTES)
async def test_plain_and_gzip_bodies_are_the_clis_bytes(
    client: httpx.AsyncClient, data_files: GeneratedFiles, route: str
) -> None:
    report_id = await complete_report(client, data_files)
    expected = expected_csv(data_files)
    digest = hashlib.sha256(expected).hexdigest()

    plain = await raw_body(client, route.format(report_id), PLAIN)
    coded = await raw_body(client, route.format(report_id), GZIP)

    assert plain.status_code == coded.status_code == 200
    assert plain.extensions["raw"] == expected
    assert "content-encoding" not in plain.headers
    assert plain.headers["content-length"] == str(len(expected))
    assert plain.headers["etag"] == f'"{digest}"'
    assert coded.headers["content-encoding"] == "gzip"
    assert gzip.decompress(coded.extensions["raw"]) == expected
    assert coded.headers["content-length"] == str(len(coded.extensions["raw"]))
    assert coded.headers["etag"] == f'"{digest}-gzip"'
    for response in (plain, coded):
        assert response.headers["x-row-count"] == str(data_files.stores)
        assert response.headers["cache-control"] == "private, no-cache"
        assert response.headers["vary"] == "Accept-Encoding"
        assert response.headers["x-report-status"] == "Complete"
        assert response.headers["content-type"] == "text/csv; charset=utf-8"


@pytest.mark.parametrize("route", ROUTES)
async def test_the_current_etag_gets_a_304(
    client: httpx.AsyncClient, data_files: GeneratedFiles, route: str
) -> None:
    report_id = await complete_report(client, data_files)
    url = route.format(report_id)
    plain_tag = (await client.get(url, headers=PLAIN)).headers["etag"]
    gzip_tag = (await client.get(url, headers=GZIP)).headers["etag"]

    for headers, tag in ((PLAIN, plain_tag), (GZIP, gzip_tag)):
        for sent in (tag, f"W/{tag}", f'"other", {tag}', "*"):
            cached = await client.get(url, headers={**headers, "If-None-Match": sent})
            assert cached.status_code == 304, sent
            assert cached.content == b""
            assert cached.headers["etag"] == tag
            assert cached.headers["cache-control"] == "private, no-cache"
    # Another representation's tag, or another file's, is not current.
    for headers, sent in ((PLAIN, gzip_tag), (GZIP, plain_tag), (PLAIN, '"0123"')):
        fresh = await client.get(url, headers={**headers, "If-None-Match": sent})
        assert fresh.status_code == 200, sent
        assert fresh.content == expected_csv(data_files)


async def test_an_unfinished_report_ignores_if_none_match(
    client: httpx.AsyncClient,
) -> None:
    report_id = (await client.post("/trigger_report")).json()["report_id"]
    await wait_until_final(client, report_id)
    # No polls: complete, and its CSV is the header alone.
    empty = await client.get(f"/reports/{report_id}/csv", headers=PLAIN)
    assert empty.headers["x-row-count"] == "0"
    assert empty.content.count(b"\n") == 1

    unknown = await client.get(
        "/reports/00000000-0000-4000-8000-000000000000/csv", headers={"If-None-Match": "*"}
    )
    assert unknown.status_code == 404


def test_accept_encoding_qualities() -> None:
    assert accepts_gzip("gzip")
    assert accepts_gzip("deflate, GZIP;q=0.5")
    assert accepts_gzip("x-gzip")
    assert accepts_gzip("*")
    assert accepts_gzip("br;q=1, *;q=0.1")
    assert not accepts_gzip(None)
    assert not accepts_gzip("")
    assert not accepts_gzip("identity")
    assert not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("gzip;q=0.000, *")
    assert not accepts_gzip("*;q=0")
    assert not accepts_gzip("gzip;q=nonsense")


def test_if_none_match_lists() -> None:
    assert not_modified('"a", W/"b"', '"b"')
    assert not_modified(" * ", '"b"')
    assert not not_modified('"a"', '"b"')
    assert not not_modified(None, '"b"')
    assert not not_modified("", '"b"')


def test_inflating_is_chunked_and_refuses_a_cut_file() -> None:
    data = b"store_id,uptime\n" + b"".join(b"%d,60.00\n" % n for n in range(50_000))
    compressed = gzip.compress(data)

    chunks = list(inflate(compressed, chunk_bytes=4096))

    assert b"".join(chunks) == data
    assert max(len(chunk) for chunk in chunks) <= 4096
    with pytest.raises(ValueError, match="gzip member"):
        list(inflate(compressed[:-10]))
    with pytest.raises(ValueError, match="gzip member"):
        list(inflate(compressed + b"more"))


def _stored(data: bytes) -> tuple[FileInfo, bytes]:
    return encode_csv(data, rows=data.count(b"\n") - 1)


def _csv(rows: int, value: bytes = b"60.00") -> bytes:
    return b"store_id,uptime\n" + b"".join(b"%d,%s\n" % (n, value) for n in range(rows))


async def test_inflated_files_keep_the_most_recently_sent_within_their_budget() -> None:
    first, second, third = (_stored(_csv(1_000, value)) for value in (b"1", b"2", b"3"))
    size = first[0].size
    kept = InflatedFiles(budget_bytes=2 * size, largest_bytes=size)

    for info, compressed in (first, second, first, third):
        assert await kept.inflated(info, compressed) == gzip.decompress(compressed)

    # The second was sent least recently: it made room for the third.
    assert kept.kept_bytes == 2 * size
    assert await kept.inflated(first[0], b"not gzip") == gzip.decompress(first[1])
    assert await kept.inflated(third[0], b"not gzip") == gzip.decompress(third[1])
    assert await kept.inflated(second[0], b"not gzip") is None


async def test_a_large_or_damaged_file_is_not_kept() -> None:
    large_info, large = _stored(_csv(10_000))
    info, compressed = _stored(_csv(1_000))
    kept = InflatedFiles(largest_bytes=large_info.size - 1)

    assert await kept.inflated(large_info, large) is None
    # Bytes that are not the ones its digest names, or not one whole gzip member.
    other = gzip.compress(_csv(1_000, b"0.00"))
    assert await kept.inflated(info, other) is None
    assert await kept.inflated(info, compressed[:-10]) is None
    assert kept.kept_bytes == 0


async def test_a_file_not_kept_is_inflated_as_it_is_sent() -> None:
    data = _csv(10_000)
    info, compressed = _stored(data)
    response = await file_response(
        info,
        compressed,
        gzipped=False,
        inflated_files=InflatedFiles(largest_bytes=0),
        media_type="text/csv",
        headers={},
    )
    assert isinstance(response, StreamingResponse)
    assert response.headers["content-length"] == str(len(data))
    chunks = [chunk async for chunk in response.body_iterator]
    assert len(chunks) > 1
    assert all(isinstance(chunk, bytes) for chunk in chunks)
    assert b"".join(chunk for chunk in chunks if isinstance(chunk, bytes)) == data


@contextlib.asynccontextmanager
async def sessions(client: httpx.AsyncClient) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the database of the app `client` talks to."""
    yield app_state(client).sessionmaker


async def test_a_failed_report_has_no_file(
    client: httpx.AsyncClient,
    mode: Settings,
    data_files: GeneratedFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await complete_report(client, data_files)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the engine broke")

    monkeypatch.setattr("store_monitor.shards.compute_report", broken)
    async with sessions(client) as sessionmaker:
        async with sessionmaker.begin() as session:
            report = Report()
            session.add(report)
        runner = Runner(owner="tests", lease_seconds=30, timeout_seconds=60, max_attempts=3)
        await report_runs.run_report(sessionmaker, report.id, 1, runner)
    report_id = str(report.id)

    assert (await client.get(f"/reports/{report_id}")).json()["status"] == "Failed"
    refused = await client.get(f"/reports/{report_id}/csv", headers={"If-None-Match": "*"})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "report_not_complete"
    polled = await client.get(f"/get_report/{report_id}")
    assert polled.json()["status"] == "Failed"
    async with sessions(client) as sessionmaker, sessionmaker() as session:
        files = await session.scalar(
            sa.select(sa.func.count()).where(ReportFile.report_id == report.id)
        )
    assert files == 0


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[tuple[Any, AppState]]:
    """The app as a server runs it (its lifespan around, its state in every request's scope),
    and that state."""
    async with app.router.lifespan_context(app) as state:
        assert state is not None

        async def with_state(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state)
            await app(scope, receive, send)

        yield with_state, state[STATE_KEY]


@pytest.mark.parametrize("headers", [PLAIN, GZIP], ids=["plain", "gzip"])
async def test_status_reads_answer_while_a_download_is_held_open(
    postgres_url: str, data_files: GeneratedFiles, headers: dict[str, str]
) -> None:
    await empty_postgres(postgres_url)
    # One connection, and a short wait for it: a download holding it would fail the status read.
    settings = postgres_mode(
        postgres_url,
        database_pool_size=1,
        database_max_overflow=0,
        database_pool_timeout_seconds=1,
    )
    app = create_app(settings)
    async with arq_worker(settings), running(app) as (asgi, state):
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{TEST_HOST}") as client:
            report_id = await complete_report(client, data_files)

            # The control: while the one connection is taken, a status read cannot answer.
            held = await state.engine.connect()
            try:
                starved = await client.get(f"/reports/{report_id}")
                assert starved.status_code == 503
            finally:
                await held.close()

            first_body = asyncio.Event()
            release = asyncio.Event()
            sent: list[dict[str, Any]] = []

            async def receive() -> dict[str, Any]:
                if not sent:
                    return {"type": "http.request", "body": b"", "more_body": False}
                await release.wait()
                return {"type": "http.disconnect"}

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)
                if message["type"] == "http.response.body" and not first_body.is_set():
                    first_body.set()
                    await release.wait()  # a client that reads no further for now

            scope = _get_scope(f"/reports/{report_id}/csv", headers)
            download = asyncio.create_task(asgi(scope, receive, send))
            try:
                await first_body.wait()
                status = await client.get(f"/reports/{report_id}")
                assert status.status_code == 200
                assert status.json()["status"] == "Complete"
            finally:
                release.set()
                await download
    assert sent[0]["status"] == 200


def _get_scope(path: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", TEST_HOST.encode()),
            *((name.lower().encode(), value.encode()) for name, value in headers.items()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": (TEST_HOST, 80),
    }
