"""Uploads: a good file as a text/csv body or a multipart part; a bad one is a 4xx with a clear
JSON body, and leaves the stored data as it was."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from store_monitor.synthetic import GeneratedFiles

from .service import embedded, serve, upload_all, wait_until_final

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
    ],
    ids=[
        "missing-column",
        "bad-status",
        "bad-timestamp",
        "header-only",
        "bad-day",
        "extra-field",
        "not-utf8",
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
    after = await _report(client)
    assert after[1] == before[1]
    assert after[0]["now"] == before[0]["now"]


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
