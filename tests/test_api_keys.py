"""API keys over REST (`/v1/api-keys`), on SQLite and PostgreSQL: create (shown once), list
(never a hash), rename, delete; bad input refused; each change in the audit log; the time a key
was last used kept without a write per request; `heliograph keys create --permissions`."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

from conftest import Heliograph
from heliograph.cli.main import cli
from heliograph.domain.access import Role
from heliograph.domain.keys import KEY_PREFIX, Identity, hash_key
from heliograph.services.audit import AuditQuery
from heliograph.services.key_cache import CachedKeyVerifier
from test_permissions import CHAT, sign_in

API_KEY_FIELDS = {"id", "api_key_name", "key_permissions", "created_at", "last_used_at", "prefix"}


async def request(
    hg: Heliograph, method: str, path: str, body: Any = None, key: str | None = None
) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method, hg.api + path, json=body, headers=hg.auth(key)
        ) as response:
            return response.status, await response.json()


async def listing(hg: Heliograph, key: str | None = None) -> dict[str, dict[str, Any]]:
    status, body = await request(hg, "GET", "/v1/api-keys", key=key)
    assert status == 200, body
    return {item["id"]: item for item in body["data"]}


async def chat(hg: Heliograph, key: str) -> int:
    headers = {**hg.gateway_auth(key), "Authorization": "Bearer sk-test"}
    async with aiohttp.ClientSession() as session:
        url = f"{hg.gateway}/openai/v1/chat/completions"
        async with session.post(url, json=CHAT, headers=headers) as response:
            await response.read()
            return response.status


async def test_create_list_rename_delete(heliograph_on_each_db: Heliograph) -> None:
    hg = heliograph_on_each_db
    status, body = await request(
        hg, "POST", "/v1/api-keys", {"api_key_name": "ci", "key_permissions": "r"}
    )
    assert status == 201, body
    key_id, api_key = body["data"]["id"], body["data"]["apiKey"]
    assert set(body["data"]) == {"id", "apiKey"}
    assert api_key.startswith(KEY_PREFIX)

    keys = await listing(hg)
    assert set(keys[key_id]) == API_KEY_FIELDS
    assert keys[key_id]["api_key_name"] == "ci"
    assert keys[key_id]["key_permissions"] == "r"
    assert keys[key_id]["prefix"] == api_key[: len(KEY_PREFIX) + 7]
    assert keys[key_id]["last_used_at"] is None
    assert datetime.fromisoformat(keys[key_id]["created_at"]).tzinfo is not None
    assert list(keys)[-1] == key_id, "newest last"
    text = json.dumps(keys)
    assert api_key not in text, "a key is shown once"
    assert "hash" not in text

    # The new key works, with its permissions.
    assert (await request(hg, "GET", "/v1/rate-limits", key=api_key))[0] == 200
    assert (await request(hg, "GET", "/v1/api-keys", key=api_key))[0] == 403

    status, body = await request(hg, "PATCH", f"/v1/api-keys/{key_id}", {"api_key_name": " ro "})
    assert status == 200, body
    assert body["data"]["api_key_name"] == "ro"
    assert (await listing(hg))[key_id]["api_key_name"] == "ro"

    status, body = await request(hg, "DELETE", f"/v1/api-keys/{key_id}")
    assert status == 200, body
    assert body["data"] == {"deleted": key_id}
    assert key_id not in await listing(hg)
    # Deleted through this process: refused at once, not after the next re-check.
    assert (await request(hg, "GET", "/v1/rate-limits", key=api_key))[0] == 401
    for method, body in (("DELETE", None), ("PATCH", {"api_key_name": "again"})):
        status, answer = await request(hg, method, f"/v1/api-keys/{key_id}", body)
        assert status == 404, answer
        assert answer == {"data": None, "error": f"no API key {key_id!r}"}


async def test_permissions_default_to_rw_and_a_person_is_recorded(heliograph: Heliograph) -> None:
    status, body = await request(heliograph, "POST", "/v1/api-keys", {"api_key_name": "plain"})
    assert status == 201, body
    keys = heliograph.running.services.keys.list_keys(heliograph.organization_id)
    made = {key.key_id: key for key in keys}[body["data"]["id"]]
    assert made.permissions == "rw"
    assert made.user_id is None, "made by a key, not a person"

    admin = sign_in(heliograph, heliograph.organization_id, Role.ADMIN)
    async with aiohttp.ClientSession() as session:
        url = heliograph.api + "/v1/api-keys"
        new = {"api_key_name": "mine", "key_permissions": "w"}
        async with session.post(url, json=new, headers=admin.headers()) as response:
            assert response.status == 201
            key_id = (await response.json())["data"]["id"]
        member = sign_in(heliograph, heliograph.organization_id, Role.MEMBER)
        async with session.post(url, json=new, headers=member.headers()) as response:
            assert response.status == 403
        async with session.get(url, headers=member.headers()) as response:
            assert response.status == 403
    keys = heliograph.running.services.keys.list_keys(heliograph.organization_id)
    assert {key.key_id: key for key in keys}[key_id].user_id == admin.user_id


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "api_key_name"),
        ({"api_key_name": ""}, "api_key_name"),
        ({"api_key_name": "   "}, "api_key_name cannot be blank"),
        ({"api_key_name": "x" * 201}, "api_key_name"),
        ({"api_key_name": 5}, "api_key_name"),
        ({"api_key_name": "a", "key_permissions": "x"}, "key_permissions must be rw, r or w"),
        ({"api_key_name": "a", "key_permissions": "wr"}, "key_permissions must be rw, r or w"),
        ({"api_key_name": "a", "key_permissions": "rw" * 10}, "key_permissions"),
        ({"api_key_name": "a", "key_permissions": None}, "key_permissions"),
        ({"api_key_name": "a", "organization_id": "other"}, "organization_id"),
        (["api_key_name"], "invalid request"),
    ],
)
async def test_bad_input_is_a_400_that_says_why(
    heliograph: Heliograph, body: Any, message: str
) -> None:
    before = await listing(heliograph)
    status, answer = await request(heliograph, "POST", "/v1/api-keys", body)
    assert status == 400, answer
    assert answer["data"] is None
    assert message in answer["error"]
    some_id = next(iter(before))
    if isinstance(body, dict) and "api_key_name" in body:
        status, answer = await request(heliograph, "PATCH", f"/v1/api-keys/{some_id}", body)
        assert status == 400, answer
    assert await listing(heliograph) == before


async def test_malformed_json_and_long_ids_are_refused(heliograph: Heliograph) -> None:
    async with aiohttp.ClientSession() as session:
        headers = {**heliograph.auth(), "Content-Type": "application/json"}
        url = heliograph.api + "/v1/api-keys"
        async with session.post(url, data=b'{"api_key_name": ', headers=headers) as response:
            assert response.status == 400
            assert (await response.json())["data"] is None
    status, body = await request(heliograph, "DELETE", "/v1/api-keys/" + "x" * 65)
    assert status == 400, body
    status, body = await request(heliograph, "DELETE", "/v1/api-keys/provider-keys")
    assert status in (404, 405), body


async def test_each_change_is_in_the_audit_log(heliograph_on_each_db: Heliograph) -> None:
    hg = heliograph_on_each_db
    services = hg.running.services
    caller_id = services.keys.list_keys(hg.organization_id)[0].key_id
    _, body = await request(hg, "POST", "/v1/api-keys", {"api_key_name": "audited"})
    key_id = body["data"]["id"]
    await request(hg, "PATCH", f"/v1/api-keys/{key_id}", {"api_key_name": "renamed"})
    await request(hg, "DELETE", f"/v1/api-keys/{key_id}")
    lines = services.audit.query(
        AuditQuery(hg.organization_id, action="api_key.", target_id=key_id)
    )
    assert [line.action for line in lines] == ["api_key.delete", "api_key.rename", "api_key.create"]
    for line in lines:
        assert line.actor_key_id == caller_id
        assert line.address == "127.0.0.1"
        assert line.target_type == "api_key"
    assert lines[1].details == {"from": "audited", "to": "renamed"}
    assert lines[2].details == {"name": "audited", "key_permissions": "rw"}
    assert body["data"]["apiKey"] not in str(lines), "never a secret in the audit log"


async def test_the_listing_shows_when_a_key_was_last_used(
    heliograph_on_each_db: Heliograph,
) -> None:
    hg = heliograph_on_each_db
    _, body = await request(hg, "POST", "/v1/api-keys", {"api_key_name": "used"})
    key_id, api_key = body["data"]["id"], body["data"]["apiKey"]
    before = datetime.now(UTC)
    assert await chat(hg, api_key) == 200
    deadline = time.monotonic() + 5  # written by the next background re-check (every 2 s)
    while (used := (await listing(hg))[key_id]["last_used_at"]) is None:
        assert time.monotonic() < deadline, "last_used_at was not written"
        await asyncio.sleep(0.1)
    moment = datetime.fromisoformat(used)
    assert before.replace(microsecond=0) <= moment.replace(microsecond=0) <= datetime.now(UTC)


class Directory:
    """Keys as the app DB has them, recording every `touch`; `fail` makes writes fail."""

    def __init__(self) -> None:
        self.touches: list[dict[str, datetime]] = []
        self.fail = False
        self.known: dict[str, Identity] = {}

    def lookup(self, key: str) -> Identity | None:
        self.known[hash_key(key)] = Identity("org", f"id-{key}")
        return self.known[hash_key(key)]

    def active(self, key_hashes: Sequence[str]) -> dict[str, Identity]:
        return {key_hash: self.known[key_hash] for key_hash in key_hashes}

    def touch(self, used: Mapping[str, datetime]) -> None:
        if self.fail:
            raise OSError("the app DB is away")
        self.touches.append(dict(used))


async def test_uses_are_written_in_one_batch_at_most_once_an_interval() -> None:
    directory = Directory()
    verifier = CachedKeyVerifier(directory, ttl_s=60, refresh_s=3600, touch_every_s=3600)
    try:
        before = datetime.now(UTC)
        for _ in range(100):
            for key in ("a", "b", "c"):
                assert await verifier.verify(f"Bearer {key}") is not None
        assert directory.touches == [], "a request never writes"
        await verifier.refresh()
        assert len(directory.touches) == 1, "one batch"
        assert set(directory.touches[0]) == {"id-a", "id-b", "id-c"}
        assert all(
            before <= moment <= datetime.now(UTC) for moment in directory.touches[0].values()
        )
        await verifier.verify("Bearer a")
        await verifier.refresh()
        assert len(directory.touches) == 1, "not written again within the interval"
    finally:
        await verifier.close()
    assert directory.touches[1].keys() == {"id-a"}, "the last use is written as it closes"


async def test_only_keys_used_since_their_last_write_are_written() -> None:
    directory = Directory()
    verifier = CachedKeyVerifier(directory, ttl_s=60, refresh_s=3600, touch_every_s=0)
    try:
        for key in ("a", "b"):
            await verifier.verify(f"Bearer {key}")
        await verifier.refresh()
        await verifier.refresh()
        assert len(directory.touches) == 1, "nothing used since"
        await verifier.verify("Bearer b")
        await verifier.refresh()
        assert directory.touches[1].keys() == {"id-b"}
    finally:
        await verifier.close()


async def test_a_failing_write_is_logged_once_and_never_stops_verification(
    caplog: pytest.LogCaptureFixture,
) -> None:
    directory = Directory()
    directory.fail = True
    verifier = CachedKeyVerifier(directory, ttl_s=60, refresh_s=3600, touch_every_s=0)
    try:
        with caplog.at_level(logging.WARNING, "heliograph.keys"):
            for _ in range(3):
                assert await verifier.verify("Bearer a") == Identity("org", "id-a")
                await verifier.refresh()
        warnings = [r for r in caplog.records if "last used" in r.getMessage()]
        assert len(warnings) == 1
        directory.fail = False
        await verifier.refresh()
        assert [set(used) for used in directory.touches] == [{"id-a"}], "written once it can be"
    finally:
        await verifier.close()


def test_keys_create_takes_permissions(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    org = json.loads(runner.invoke(cli, ["init", *data, "--json"]).output.splitlines()[-1])
    base = ["keys", "create", *data, "--org", org["organization_id"]]
    made = runner.invoke(cli, [*base, "--name", "reader", "--permissions", "r"])
    assert made.exit_code == 0, made.output
    key_id, _ = made.output.split()
    listed = runner.invoke(cli, ["keys", "list", *data]).output
    line = next(line for line in listed.splitlines() if key_id in line)
    assert "  r  " in line
    assert "never used" in line
    wrong = runner.invoke(cli, [*base, "--permissions", "x"])
    assert wrong.exit_code != 0
    assert "--permissions" in wrong.output
    blank = runner.invoke(cli, [*base, "--name", " "])
    assert blank.exit_code != 0
    assert "--name" in blank.output
    assert str(uuid.UUID(key_id)) == key_id
