"""Uploads: a good file as a text/csv body or a multipart part; a bad one is a 4xx with a clear
JSON body, and leaves the stored data as it was."""

import gzip
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from store_monitor.synthetic import GeneratedFiles
from support.service import (
    embedded,
    empty_postgres,
    postgres_mode,
    serve,
    upload_all,
    wait_until_final,
)

CSV = {"Content-Type": "text/csv"}
POLLS = b"store_id,status,timestamp_utc\n"


async def _report(client: httpx.AsyncClient) -> tuple[dict[str, Any], bytes]:
    """A fresh report of the stored data: its metadata and CSV."""
    report_id = (await client.post("/trigger_report")).json()["report_id"]
    metadata = await wait_until_final(client, report_id)
    return metadata, (await client.get(f"/get_report/{report_id}")).content


async def test_multipart_and_body_uploads_agree(
    client: httpx.AsyncClient, data_files: GeneratedFiles
) -> None:
    response = await client.post(
        "/ingest/polls",
        files={"file": ("store_status.csv", data_files.store_status.read_bytes(), "text/csv")},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "source": "polls",
        "rows_received": data_files.polls,
        "rows_added": data_files.polls,
        "stores": data_files.stores,
    }
    # The same polls again, as a body: nothing new.
    again = await client.post(
        "/ingest/polls", content=data_files.store_status.read_bytes(), headers=CSV
    )
    assert again.status_code == 200
    assert again.json()["rows_added"] == 0

    hours = await client.post(
        "/ingest/business-hours",
        files={"file": ("menu_hours.csv", data_files.menu_hours.read_bytes())},
    )
    assert hours.status_code == 200, hours.text
    assert hours.json()["source"] == "business_hours"
    zones = await client.post(
        "/ingest/timezones",
        content=data_files.timezones.read_bytes(),
        headers={"Content-Type": "application/csv; charset=utf-8"},
    )
    assert zones.status_code == 200, zones.text
    assert zones.json()["rows_received"] == zones.json()["stores"]


@pytest.mark.parametrize(
    ("route", "body", "expected"),
    [
        (
            "/ingest/polls",
            b"store_id,status\n1,active\n",
            {"reason": "missing required column 'timestamp_utc'", "line": None},
        ),
        (
            "/ingest/polls",
            POLLS
            + b"1,active,2023-01-22 12:09:39.388884 UTC\n2,sleeping,2023-01-22 12:09:39 UTC\n",
            {"line": 3, "column": "status", "value": "sleeping"},
        ),
        (
            "/ingest/polls",
            POLLS + b"1,active,yesterday\n",
            {"line": 2, "column": "timestamp_utc", "value": "yesterday"},
        ),
        ("/ingest/polls", POLLS, {"reason": "no polls (the file has a header but no rows)"}),
        (
            "/ingest/business-hours",
            b"store_id,dayOfWeek,start_time_local,end_time_local\n1,7,09:00:00,17:00:00\n",
            {"line": 2, "column": "dayOfWeek", "value": "7"},
        ),
        (
            "/ingest/timezones",
            b"store_id,timezone_str\n1,America/Denver,extra\n",
            {"line": 2},
        ),
        (
            "/ingest/timezones",
            b"store_id,timezone_str\n1,\xffAmerica/Denver\n",
            {"line": 2, "reason": "not valid UTF-8 (byte 0xff)"},
        ),
        (
            "/ingest/polls",
            POLLS + b"1,active,9999-12-31 23:59:59.999999 UTC\n",
            {"line": 2, "column": "timestamp_utc", "value": "9999-12-31 23:59:59.999999 UTC"},
        ),
        (
            "/ingest/polls",
            POLLS + b"1,active,0001-01-01 00:00:00.000000 UTC\n",
            {"line": 2, "column": "timestamp_utc", "value": "0001-01-01 00:00:00.000000 UTC"},
        ),
        (
            "/ingest/polls",
            POLLS + b"1,active,2023-01-22 12:09:39 UTC\n1,active,2999-01-01T00:00:00Z\n",
            {"line": 3, "column": "timestamp_utc", "value": "2999-01-01T00:00:00Z"},
        ),
        (
            "/ingest/polls",
            POLLS + b"a\x00b,active,2023-01-22 12:09:39 UTC\n",
            {"line": 2, "column": "store_id", "value": "a\x00b", "value_length": 3},
        ),
        (
            "/ingest/polls",
            POLLS + b"x" * 1_000_000 + b",active,2023-01-22 12:09:39 UTC\n",
            {"line": 2, "column": "store_id", "value": "x" * 200, "value_length": 1_000_000},
        ),
        (
            "/ingest/polls",
            POLLS + b'"=HYPERLINK(""http://x"";""y"")",active,2023-01-22 12:09:39 UTC\n',
            {"line": 2, "column": "store_id", "value": '=HYPERLINK("http://x";"y")'},
        ),
        (
            "/ingest/business-hours",
            b"store_id,dayOfWeek,start_time_local,end_time_local\n@SUM(1+1),1,09:00,17:00\n",
            {"line": 2, "column": "store_id", "value": "@SUM(1+1)"},
        ),
        (
            "/ingest/timezones",
            b"store_id,timezone_str\n1,UTC\n-2+3,UTC\n",
            {"line": 3, "column": "store_id", "value": "-2+3"},
        ),
    ],
    ids=[
        "missing-column",
        "bad-status",
        "bad-timestamp",
        "header-only",
        "bad-day",
        "extra-field",
        "not-utf8",
        "year-9999",
        "year-1",
        "year-2999",
        "nul-in-store-id",
        "million-char-store-id",
        "formula-store-id",
        "formula-store-id-in-hours",
        "control-char-store-id-in-zones",
    ],
)
async def test_invalid_files_are_422_naming_the_problem(
    client: httpx.AsyncClient,
    data_files: GeneratedFiles,
    route: str,
    body: bytes,
    expected: dict[str, Any],
) -> None:
    await upload_all(client, data_files)
    before = await _report(client)

    response = await client.post(route, content=body, headers=CSV)

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_csv"
    assert error["details"].items() >= expected.items()
    assert error["message"] == error["details"]["message"]
    assert len(response.content) < 2_000
    after = await _report(client)
    assert after[0]["status"] == "Complete"
    assert after[1] == before[1]
    assert after[0]["now"] == before[0]["now"]
    # Sent again, the same answer: nothing of it was stored.
    again = await client.post(route, content=body, headers=CSV)
    assert again.status_code == 422
    assert again.json()["error"]["details"].items() >= expected.items()


async def test_a_5_mb_line_gives_a_small_error(client: httpx.AsyncClient) -> None:
    body = POLLS + b"1," + b"y" * 5_000_000 + b",2023-01-22 12:09:39 UTC\n"
    response = await client.post("/ingest/polls", content=body, headers=CSV)
    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert details["line"] == 2
    assert "longer than 1,048,576 bytes" in details["message"]
    assert len(response.content) < 2_000


async def test_an_empty_time_zone_is_missing_data(
    client: httpx.AsyncClient, data_files: GeneratedFiles
) -> None:
    await upload_all(client, data_files)
    before, _ = await _report(client)
    store = data_files.store_status.read_text().splitlines()[1].split(",")[0]
    response = await client.post(
        "/ingest/timezones", content=f"store_id,timezone_str\n{store},  \n".encode(), headers=CSV
    )
    assert response.status_code == 200, response.text
    after, _ = await _report(client)
    # One more store uses America/Chicago for want of a zone, and is counted as unknown.
    assert after["unknown_timezones"] == before["unknown_timezones"] + 1


async def test_a_value_the_database_refuses_is_422_naming_the_store(
    tmp_path: Path, postgres_url: str
) -> None:
    await empty_postgres(postgres_url)
    async with serve(postgres_mode(postgres_url)) as client:
        body = b"store_id,timezone_str\n1,UTC\n2,Europe/\x00Paris\n"
        response = await client.post("/ingest/timezones", content=body, headers=CSV)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "value_refused"
        assert error["details"]["store_id"] == "2"
        assert error["details"]["table"] == "timezones"
        assert "COPY" not in response.text
        fine = await client.post("/ingest/timezones", content=body[:26], headers=CSV)
        assert fine.status_code == 200, fine.text


def _bomb(compress: Callable[[], Any], expanded_bytes: int) -> bytes:
    """A small compressed CSV that expands to `expanded_bytes`."""
    line = b"1,active,2023-01-22 12:09:39.388884 UTC\n"
    block = line * (1 << 20 // len(line))
    packer = compress()
    parts = [packer.compress(POLLS)]
    parts += [packer.compress(block) for _ in range(expanded_bytes // len(block))]
    return b"".join([*parts, packer.flush()])


@pytest.mark.parametrize(
    ("compress", "kind"),
    [
        (lambda: zlib.compressobj(9, zlib.DEFLATED, 31), "gzip"),  # wbits 31: a gzip stream
        (lambda: zlib.compressobj(9), "zlib"),
    ],
)
async def test_a_compressed_bomb_is_415_and_never_expanded(
    tmp_path: Path, compress: Callable[[], Any], kind: str
) -> None:
    cap = 1 << 20
    bomb = _bomb(compress, 64 << 20)  # 64 MiB of CSV in a few hundred KB
    assert len(bomb) < cap
    async with serve(embedded(tmp_path, max_upload_bytes=cap)) as client:
        for response in (
            await client.post("/ingest/polls", content=bomb, headers=CSV),
            await client.post("/ingest/polls", files={"file": ("polls.csv.gz", bomb)}),
        ):
            assert response.status_code == 415, response.text
            error = response.json()["error"]
            assert error["code"] == "compressed_upload"
            assert error["details"] == {"compression": kind}
        nothing, _ = await _report(client)
        assert nothing["row_count"] == 0


async def test_a_content_encoding_is_415(tmp_path: Path) -> None:
    body = POLLS + b"1,active,2023-01-22 12:09:39 UTC\n"
    async with serve(embedded(tmp_path)) as client:
        for encoding, sent in (("gzip", gzip.compress(body)), ("br", body)):
            response = await client.post(
                "/ingest/polls", content=sent, headers={**CSV, "Content-Encoding": encoding}
            )
            assert response.status_code == 415, response.text
            assert response.json()["error"]["details"] == {"compression": encoding}
        plain = await client.post(
            "/ingest/polls", content=body, headers={**CSV, "Content-Encoding": "identity"}
        )
        assert plain.status_code == 200, plain.text


@pytest.mark.parametrize("route", ["/ingest/polls", "/ingest/business-hours", "/ingest/timezones"])
async def test_an_empty_upload_is_refused(client: httpx.AsyncClient, route: str) -> None:
    for response in (
        await client.post(route, content=b"", headers=CSV),
        await client.post(route, files={"file": ("empty.csv", b"")}),
    ):
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "empty_upload"


async def test_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    for headers in ({"Content-Type": "application/json"}, {}):
        response = await client.post("/ingest/polls", content=POLLS, headers=headers)
        assert response.status_code == 415
        error = response.json()["error"]
        assert error["code"] == "unsupported_media_type"
        assert "text/csv" in error["details"]["accepted"]


async def test_multipart_without_a_file_part_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/ingest/polls", files={"upload": ("polls.csv", POLLS)})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "missing_file"


async def test_over_the_size_cap_is_413(tmp_path: Path, data_files: GeneratedFiles) -> None:
    async with serve(embedded(tmp_path, max_upload_bytes=4096)) as client:
        big = data_files.store_status.read_bytes()
        assert len(big) > 4096

        async def streamed() -> AsyncIterator[bytes]:
            # No Content-Length: the cap must hold while the body streams in.
            for start in range(0, len(big), 1000):
                yield big[start : start + 1000]

        for response in (
            await client.post("/ingest/polls", content=big, headers=CSV),
            await client.post("/ingest/polls", content=streamed(), headers=CSV),
            await client.post("/ingest/polls", files={"file": ("polls.csv", big)}),
        ):
            assert response.status_code == 413
            error = response.json()["error"]
            assert error["code"] == "payload_too_large"
            assert error["details"] == {"max_upload_bytes": 4096}

        nothing, _ = await _report(client)
        assert nothing["row_count"] == 0

        small = await client.post(
            "/ingest/polls", content=big[:4000].rsplit(b"\n", 1)[0], headers=CSV
        )
        assert small.status_code == 200, small.text
