"""The "Down now" page over HTTP: it needs a session, shows the live view's stores with links to
the latest report, and an owner sees only their own stores, on the page and in its JSON."""

import asyncio
from datetime import datetime, timedelta

import httpx

from support.service import bearer

from .test_sign_in import Keyed, sign_in


async def _caught_up(client: httpx.AsyncClient, admin: str) -> None:
    async with asyncio.timeout(60):
        while True:
            view = (await client.get("/live", headers=bearer(admin))).json()
            if view["now"] is not None and view["now"] == view["latest_poll_at"]:
                return
            await asyncio.sleep(0.05)


async def test_down_now_page_narrowed_to_the_owner(keyed: Keyed) -> None:
    client, keys, report_id = keyed
    assert (await client.get("/ui/live")).status_code == 303
    await _caught_up(client, keys["admin"])
    # An hour later, one of the owner's stores and another store are inactive.
    latest = (await client.get("/live", headers=bearer(keys["admin"]))).json()["latest_poll_at"]
    later = datetime.fromisoformat(latest) + timedelta(hours=1)
    stamp = later.strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    mine_down, other_down = keys["owned"].split(",")[0], keys["foreign"]
    # Open all day, every day: inactive at that hour means down.
    hours = "".join(
        f"{store},{day},00:00:00,23:59:59\n"
        for store in (mine_down, other_down)
        for day in range(7)
    )
    polls = "".join(f"{store},inactive,{stamp}\n" for store in (mine_down, other_down))
    for route, header, rows in (
        ("/ingest/business-hours", "store_id,dayOfWeek,start_time_local,end_time_local", hours),
        ("/ingest/polls", "store_id,status,timestamp_utc", polls),
    ):
        uploaded = await client.post(
            route,
            content=f"{header}\n{rows}".encode(),
            headers={"Content-Type": "text/csv", **bearer(keys["admin"])},
        )
        assert uploaded.status_code == 200, uploaded.text
    await _caught_up(client, keys["admin"])

    everyone = (await client.get("/live", headers=bearer(keys["admin"]))).json()
    down = {s["store_id"] for s in everyone["stores"]}
    assert {mine_down, other_down} <= down

    await sign_in(client, keys["admin"])
    page = await client.get("/ui/live")
    assert page.status_code == 200
    assert "<h1>Down now</h1>" in page.text
    first = everyone["stores"][0]["store_id"]
    assert f'href="/ui/reports/{report_id}/stores/{first}"' in page.text
    assert 'href="/ui/live"' in (await client.get("/")).text  # the reports list links to it
    shown = (await client.get("/ui/live.json")).json()
    assert [s["store_id"] for s in shown["stores"]] == [s["store_id"] for s in everyone["stores"]]
    assert shown["stores"][0]["since_utc"].endswith(" UTC")

    owned = set(keys["owned"].split(","))
    client.cookies.clear()
    await sign_in(client, keys["owner"])
    mine = (await client.get("/ui/live.json")).json()
    expected = [s["store_id"] for s in everyone["stores"] if s["store_id"] in owned]
    assert [s["store_id"] for s in mine["stores"]] == expected
    assert mine_down in expected
    assert other_down not in expected
    assert mine["total"] == len(expected)
