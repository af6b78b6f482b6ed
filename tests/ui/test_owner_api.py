"""An owner key's API reads of a report's details: narrowed to the owner's stores, as the
dashboard's are; another owner's store is as absent as a store not in the report."""

import httpx

from support.service import bearer

Keyed = tuple[httpx.AsyncClient, dict[str, str], str]


async def test_owner_key_reads_only_its_stores(keyed: Keyed) -> None:
    client, keys, report_id = keyed
    owner = bearer(keys["owner"])
    owned = set(keys["owned"].split(","))
    for kind in ("incidents", "daily"):
        response = await client.get(f"/reports/{report_id}/{kind}", headers=owner)
        assert response.status_code == 200
        stores = {line.split(",")[0] for line in response.text.splitlines()[1:]}
        assert stores <= owned
        everyone = await client.get(f"/reports/{report_id}/{kind}", headers=bearer(keys["admin"]))
        assert {line.split(",")[0] for line in everyone.text.splitlines()[1:]} > stores
    store = sorted(owned)[0]
    mine = await client.get(f"/reports/{report_id}/stores/{store}", headers=owner)
    assert mine.status_code == 200
    assert mine.json()["store_id"] == store
    foreign = await client.get(f"/reports/{report_id}/stores/{keys['foreign']}", headers=owner)
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "store_not_found"
    assert (
        await client.get(
            f"/reports/{report_id}/stores/{keys['foreign']}", headers=bearer(keys["admin"])
        )
    ).status_code == 200
    assert (await client.get(f"/reports/{report_id}/stores/{store}")).status_code == 401
