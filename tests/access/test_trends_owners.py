"""Owner keys and the reads across reports: a summary of the owner's stores only, the history of
the owner's stores only, and one store's CSVs of the owner's stores only; another owner's store
is as absent as a store never reported."""

import io

import httpx
import polars as pl

from store_monitor.engine import compute_report
from store_monitor.settings import Settings
from store_monitor.sources import read_business_hours, read_polls, read_timezones
from store_monitor.synthetic import GeneratedFiles
from support.service import arq_worker, bearer, create_key, upload_all, wait_until_final

from .conftest import Keys


async def test_an_owner_key_reads_the_trends_of_its_stores_only(
    client: httpx.AsyncClient,
    keys: Keys,
    settings: Settings,
    postgres_url: str,
    data_files: GeneratedFiles,
) -> None:
    client.headers.update(bearer(keys.admin))
    await upload_all(client, data_files)
    computed = compute_report(
        read_polls(data_files.store_status),
        read_business_hours(data_files.menu_hours),
        read_timezones(data_files.timezones),
    )
    assert computed.incidents is not None
    quiet = computed.rows.join(computed.incidents, on="store_id", how="anti")["store_id"]
    down = computed.rows.filter(pl.col("downtime_last_week") > 0)["store_id"]
    assert quiet.len() > 0, "the data set has no store without incidents"
    owned = sorted({quiet[0], *down[:2]})
    foreign = next(s for s in computed.rows["store_id"] if s not in owned)
    owners = "owner_id,store_id\n" + "".join(f"brand,{store}\n" for store in owned)
    uploaded = await client.post(
        "/ingest/owners", content=owners.encode(), headers={"Content-Type": "text/csv"}
    )
    assert uploaded.status_code == 200, uploaded.text
    owner = bearer(await create_key(postgres_url, "brand-owner", owner_id="brand"))
    async with arq_worker(settings):
        report_id = (await client.post("/trigger_report")).json()["report_id"]
        assert (await wait_until_final(client, report_id))["status"] == "Complete"

    summary = (await client.get(f"/reports/{report_id}/summary", headers=owner)).json()
    everything = (await client.get(f"/reports/{report_id}/summary")).json()
    mine = computed.rows.filter(pl.col("store_id").is_in(owned))
    assert summary["week"]["stores"] == len(owned) < everything["week"]["stores"]
    assert summary["week"]["downtime_hours"] == round(mine["downtime_last_week"].sum(), 2)
    assert {store["store_id"] for store in summary["worst_stores"]} <= set(owned)

    for store in owned:
        history = await client.get(f"/stores/{store}/history", headers=owner)
        assert history.status_code == 200, history.text
        assert [entry["report_id"] for entry in history.json()["reports"]] == [report_id]
    hidden = await client.get(f"/stores/{foreign}/history", headers=owner)
    assert hidden.status_code == 404
    assert hidden.json()["error"]["code"] == "store_not_found"
    assert (await client.get(f"/stores/{foreign}/history")).status_code == 200

    for kind in ("daily", "incidents"):
        refused = await client.get(
            f"/reports/{report_id}/{kind}", params={"store_id": foreign}, headers=owner
        )
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"]["code"] == "store_not_found"
        shown = await client.get(
            f"/reports/{report_id}/{kind}", params={"store_id": foreign}, headers=bearer(keys.admin)
        )
        assert shown.status_code == 200
    # The owner's store without incidents: there, with nothing in it but the header.
    empty = await client.get(
        f"/reports/{report_id}/incidents", params={"store_id": quiet[0]}, headers=owner
    )
    assert empty.status_code == 200, empty.text
    assert pl.read_csv(io.BytesIO(empty.content)).height == 0
    assert empty.content.startswith(b"store_id,")
