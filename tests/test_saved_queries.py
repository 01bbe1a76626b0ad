"""The SQL console's saved queries over the live API, in Helicone's paths and shapes: CRUD, the
console's gate on save, caps, read-only keys, and other organizations' ids."""

from __future__ import annotations

from typing import Any

import aiohttp

from conftest import Heliograph
from heliograph.domain.access import KeyPermissions
from heliograph.services.audit import AuditQuery
from heliograph.services.saved_queries import MAX_SAVED_QUERIES

BASE = "/v1/helicone-sql"
SQL = "SELECT count() AS n FROM request_response_rmt"


async def call(
    heliograph: Heliograph, method: str, path: str, key: str | None = None, **kwargs: Any
) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method, heliograph.api + path, headers=heliograph.auth(key), **kwargs
        ) as response:
            body = await response.read()
            return response.status, (await response.json() if body else None)


async def save(heliograph: Heliograph, name: str = "count", key: str | None = None) -> Any:
    status, body = await call(
        heliograph, "POST", f"{BASE}/saved-query", key, json={"name": name, "sql": SQL}
    )
    assert status == 201, body
    return body["data"][0]


async def test_create_list_get_update_delete(heliograph_on_each_db: Heliograph) -> None:
    heliograph = heliograph_on_each_db
    created = await save(heliograph, "  requests  ")
    assert created["name"] == "requests"
    assert created["sql"] == SQL
    assert created["organization_id"] == heliograph.organization_id
    assert set(created) == {"id", "organization_id", "name", "sql", "created_at", "updated_at"}
    query_id = created["id"]

    status, body = await call(heliograph, "GET", f"{BASE}/saved-queries")
    assert status == 200
    assert [q["id"] for q in body["data"]] == [query_id]
    status, body = await call(heliograph, "GET", f"{BASE}/saved-query/{query_id}")
    assert status == 200
    assert body["data"] == created

    changed = {"name": "errors", "sql": SQL + " WHERE status >= 400"}
    status, body = await call(heliograph, "PUT", f"{BASE}/saved-query/{query_id}", json=changed)
    assert status == 200
    assert body["data"]["name"] == "errors"
    assert body["data"]["sql"] == changed["sql"]
    assert body["data"]["updated_at"] >= created["updated_at"]
    # The saved SQL runs in the console as it was saved.
    status, body = await call(heliograph, "POST", f"{BASE}/execute", json={"sql": changed["sql"]})
    assert status == 200, body

    status, body = await call(heliograph, "DELETE", f"{BASE}/saved-query/{query_id}")
    assert status == 204
    assert body is None
    assert (await call(heliograph, "GET", f"{BASE}/saved-query/{query_id}"))[0] == 404
    assert (await call(heliograph, "DELETE", f"{BASE}/saved-query/{query_id}"))[0] == 404
    query = AuditQuery(heliograph.organization_id, action="saved_query.")
    lines = heliograph.running.services.audit.query(query)
    assert sorted(line.action for line in lines) == [
        "saved_query.create",
        "saved_query.delete",
        "saved_query.update",
    ]
    assert all(line.target_id == query_id and "sql" not in line.details for line in lines)


async def test_bulk_delete_skips_what_is_not_yours(heliograph: Heliograph) -> None:
    mine = [(await save(heliograph, f"q{i}"))["id"] for i in range(3)]
    _, other_key = heliograph.new_organization()
    theirs = (await save(heliograph, "theirs", other_key))["id"]
    ids = [mine[0], mine[1], theirs, "not-an-id"]
    status, body = await call(
        heliograph, "POST", f"{BASE}/saved-queries/bulk-delete", json={"ids": ids}
    )
    assert status == 200
    assert body["data"] == {"deleted": 2}
    remaining = (await call(heliograph, "GET", f"{BASE}/saved-queries"))[1]["data"]
    assert [q["id"] for q in remaining] == [mine[2]]
    assert (await call(heliograph, "GET", f"{BASE}/saved-query/{theirs}", other_key))[0] == 200


async def test_other_organizations_ids_are_not_found(heliograph_on_each_db: Heliograph) -> None:
    heliograph = heliograph_on_each_db
    _, other_key = heliograph.new_organization()
    theirs = await save(heliograph, "theirs", other_key)
    path = f"{BASE}/saved-query/{theirs['id']}"
    assert (await call(heliograph, "GET", path))[0] == 404
    update = {"name": "stolen", "sql": SQL}
    assert (await call(heliograph, "PUT", path, json=update))[0] == 404
    assert (await call(heliograph, "DELETE", path))[0] == 404
    assert (await call(heliograph, "GET", f"{BASE}/saved-queries"))[1]["data"] == []
    status, body = await call(heliograph, "GET", path, other_key)
    assert status == 200
    assert body["data"]["name"] == "theirs"


async def test_read_only_key_reads_but_cannot_change(heliograph: Heliograph) -> None:
    created = await save(heliograph)
    services = heliograph.running.services
    read_only = services.keys.create_key(heliograph.organization_id, "ro", KeyPermissions.READ)
    key = read_only.api_key
    assert (await call(heliograph, "GET", f"{BASE}/saved-queries", key))[0] == 200
    assert (await call(heliograph, "GET", f"{BASE}/saved-query/{created['id']}", key))[0] == 200
    body = {"name": "x", "sql": SQL}
    assert (await call(heliograph, "POST", f"{BASE}/saved-query", key, json=body))[0] == 403
    path = f"{BASE}/saved-query/{created['id']}"
    assert (await call(heliograph, "PUT", path, key, json=body))[0] == 403
    assert (await call(heliograph, "DELETE", path, key))[0] == 403
    assert (await call(heliograph, "GET", f"{BASE}/saved-queries", "sk-wrong"))[0] == 401


async def test_bad_input_is_refused_and_nothing_saved(heliograph: Heliograph) -> None:
    post = f"{BASE}/saved-query"
    cases: list[tuple[Any, str]] = [
        ({"name": "x", "sql": "DROP TABLE request_response"}, "SELECT"),
        ({"name": "x", "sql": "SELECT * FROM system.users"}, "table"),
        ({"name": "x", "sql": "   "}, "blank"),
        ({"name": "   ", "sql": SQL}, "name"),
        ({"name": "x" * 201, "sql": SQL}, "name"),
        ({"name": "x", "sql": "SELECT 1 -- " + "y" * 70_000}, "sql"),
        ({"name": "x"}, "sql"),
        ({"name": "x", "sql": SQL, "extra": 1}, "extra"),
    ]
    for body, word in cases:
        status, answer = await call(heliograph, "POST", post, json=body)
        assert status == 400, (body, answer)
        assert word.lower() in answer["error"].lower(), answer
    for raw in (b"{not json", b'{"name": "x", "sql": "SELECT \xff"}'):
        headers = {**heliograph.auth(), "Content-Type": "application/json"}
        async with aiohttp.ClientSession() as session:
            async with session.post(heliograph.api + post, data=raw, headers=headers) as response:
                assert response.status == 400
    status, body = await call(heliograph, "GET", f"{BASE}/saved-query/{'x' * 65}")
    assert status == 400
    ids = {"ids": ["a"] * 501}
    assert (await call(heliograph, "POST", f"{BASE}/saved-queries/bulk-delete", json=ids))[0] == 400
    mismatch = {"name": "x", "sql": SQL, "id": "another"}
    created = await save(heliograph)
    path = f"{BASE}/saved-query/{created['id']}"
    assert (await call(heliograph, "PUT", path, json=mismatch))[0] == 400
    names = [q["name"] for q in (await call(heliograph, "GET", f"{BASE}/saved-queries"))[1]["data"]]
    assert names == ["count"]


async def test_an_organization_keeps_at_most_500(heliograph: Heliograph) -> None:
    service = heliograph.running.services.saved_queries
    for i in range(MAX_SAVED_QUERIES):
        service.create(heliograph.organization_id, f"q{i}", SQL)
    status, body = await call(
        heliograph, "POST", f"{BASE}/saved-query", json={"name": "one more", "sql": SQL}
    )
    assert status == 409
    assert "500" in body["error"]
    _, other_key = heliograph.new_organization()
    await save(heliograph, "theirs", other_key)  # the cap is per organization
