"""Prompts over the live API in Helicone's Prompts 2025 paths and shapes: versions (1.0, 1.1,
2.0), environments (one version holding several), rename, tags, deletes, the caps, bad input,
read-only keys, other organizations' ids (404, nothing changed) and the audit lines; on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from conftest import Heliograph
from heliograph.domain.access import KeyPermissions
from heliograph.services import prompts
from heliograph.services.audit import AuditQuery
from heliograph.services.prompt_links import PromptBodyLinks
from heliograph.services.prompts import MAX_BODY_BYTES, MAX_TAGS

BASE = "/v1/prompt-2025"
BODY = {
    "model": "gpt-4o-mini",
    "temperature": "{{hc:temperature:number}}",
    "messages": [
        {"role": "system", "content": "You write about {{hc:topic:string}}."},
        {"role": "user", "content": "Short? {{hc:short:boolean}}"},
    ],
}


@pytest.fixture
def heliograph(heliograph_on_each_db: Heliograph) -> Heliograph:
    """Every test here runs on SQLite, then on PostgreSQL."""
    return heliograph_on_each_db


async def call(
    hg: Heliograph, method: str, path: str, key: str | None = None, **kwargs: Any
) -> tuple[int, Any]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.request(
            method, hg.api + BASE + path, headers=hg.auth(key), **kwargs
        ) as response:
            text = await response.text()
            return response.status, (await response.json() if text else None)


async def create(
    hg: Heliograph, name: str = "writer", tags: list[str] | None = None, key: str | None = None
) -> dict[str, str]:
    body = {"name": name, "tags": tags or [], "promptBody": BODY}
    status, answer = await call(hg, "POST", "", key, json=body)
    assert status == 201, answer
    assert answer["error"] is None
    return dict(answer["data"])


async def update(
    hg: Heliograph, prompt: dict[str, str], base: str, major: bool, **extra: Any
) -> str:
    body = {
        "promptId": prompt["id"],
        "promptVersionId": base,
        "newMajorVersion": major,
        "commitMessage": "tighter",
        "promptBody": {**BODY, "max_tokens": 20},
        **extra,
    }
    status, answer = await call(hg, "POST", "/update", json=body)
    assert status == 200, answer
    return str(answer["data"]["id"])


async def data(hg: Heliograph, method: str, path: str, body: Any = None) -> Any:
    status, answer = await call(hg, method, path, json=body)
    assert status == 200, (path, answer)
    return answer["data"]


async def test_versions_and_environments(heliograph: Heliograph) -> None:
    hg = heliograph
    prompt = await create(hg, "writer", ["blog", " blog ", "", "email"])
    assert len(prompt["id"]) == 6
    first = prompt["versionId"]
    got = await data(hg, "GET", f"/id/{prompt['id']}")
    assert {k: got[k] for k in ("id", "name", "tags")} == {
        "id": prompt["id"],
        "name": "writer",
        "tags": ["blog", "email"],
    }
    assert got["environments"] == {"production": first}
    assert got["version_count"] == 1

    production = await data(hg, "POST", "/query/production-version", {"promptId": prompt["id"]})
    assert production["id"] == first
    assert (production["major_version"], production["minor_version"]) == (1, 0)
    assert production["environments"] == ["production"]
    assert production["commit_message"] == "First version."
    assert production["model"] == "gpt-4o-mini"
    assert production["prompt_body"] == BODY
    assert production["variables"] == [
        {"name": "temperature", "type": "number"},
        {"name": "topic", "type": "string"},
        {"name": "short", "type": "boolean"},
    ]

    minor = await update(hg, prompt, first, major=False)
    major = await update(hg, prompt, minor, major=True, environment="staging")
    second_minor = await update(hg, prompt, first, major=False)
    versions = await data(hg, "POST", "/query/versions", {"promptId": prompt["id"]})
    numbers = [(v["major_version"], v["minor_version"]) for v in versions]
    assert numbers == [(1, 2), (2, 0), (1, 1), (1, 0)]  # newest first
    assert [v["id"] for v in versions] == [second_minor, major, minor, first]
    assert versions[1]["environments"] == ["staging"]
    ones = await data(hg, "POST", "/query/versions", {"promptId": prompt["id"], "majorVersion": 1})
    assert [v["id"] for v in ones] == [second_minor, minor, first]
    totals = await data(hg, "POST", "/query/total-versions", {"promptId": prompt["id"]})
    assert totals == {"totalVersions": 4, "majorVersions": 2}

    # One version holds production, staging and a custom environment.
    for environment in ("production", "staging", "eu-canary"):
        deploy = {"promptId": prompt["id"], "promptVersionId": minor, "environment": environment}
        assert await data(hg, "POST", "/update/environment", deploy) is None
    held = await data(hg, "POST", "/query/version", {"promptVersionId": minor})
    assert held["environments"] == ["eu-canary", "production", "staging"]
    assert (await data(hg, "POST", "/query/version", {"promptVersionId": major}))[
        "environments"
    ] == []
    custom = {"promptId": prompt["id"], "environment": "eu-canary"}
    assert (await data(hg, "POST", "/query/environment-version", custom))["id"] == minor
    assert await data(hg, "GET", "/environments") == ["production", "staging", "eu-canary"]

    remove = {"promptId": prompt["id"], "promptVersionId": minor, "environment": "eu-canary"}
    assert await data(hg, "POST", "/remove/environment", remove) is None
    status, answer = await call(hg, "POST", "/query/environment-version", json=custom)
    assert status == 404
    assert "eu-canary" in answer["error"]
    assert (await call(hg, "POST", "/remove/environment", json=remove))[0] == 404
    assert await data(hg, "GET", "/environments") == ["production", "staging"]

    # The body itself, as Helicone's bucket would serve it.
    status, body = await call(hg, "GET", f"/{major}/prompt-body")
    assert status == 200
    assert body == {**BODY, "max_tokens": 20}


async def test_query_search_tags_and_paging(heliograph: Heliograph) -> None:
    hg = heliograph
    made = {
        "Support reply": ["support", "email"],
        "support triage": ["support"],
        "Blog 100%_draft": ["blog"],
        "untagged": [],
    }
    for name, tags in made.items():
        await create(hg, name, tags)

    async def names(**body: Any) -> list[str]:
        return [p["name"] for p in await data(hg, "POST", "/query", body)]

    assert await names() == list(reversed(made))  # newest first
    assert await names(search="SUPPORT") == ["support triage", "Support reply"]
    assert await names(search="%_") == ["Blog 100%_draft"]  # wildcards are plain characters
    assert await names(tagsFilter=["email", "blog"]) == ["Blog 100%_draft", "Support reply"]
    assert await names(search="reply", tagsFilter=["support"]) == ["Support reply"]
    assert await names(page=1, pageSize=3) == ["Support reply"]
    assert await names(page=5, pageSize=3) == []
    assert await data(hg, "GET", "/count") == 4
    assert await data(hg, "GET", "/tags") == ["blog", "email", "support"]


async def test_rename_tags_and_deletes(heliograph: Heliograph) -> None:
    hg = heliograph
    prompt = await create(hg, "first")
    other = await create(hg, "second")
    pid = prompt["id"]
    assert await data(hg, "POST", f"/id/{pid}/rename", {"name": "  renamed "}) is None
    assert (await data(hg, "GET", f"/id/{pid}"))["name"] == "renamed"
    status, answer = await call(hg, "POST", f"/id/{pid}/rename", json={"name": "second"})
    assert status == 409, answer
    assert "second" in answer["error"]
    assert await data(hg, "PATCH", f"/id/{pid}/rename", {"name": "again"}) is None
    tags = await data(hg, "PATCH", f"/id/{pid}/tags", {"tags": ["b", "a", "b", "  "]})
    assert tags == ["b", "a"]
    assert (await data(hg, "GET", f"/id/{pid}"))["tags"] == ["b", "a"]

    # Deleting the version production points at leaves production empty; the only version stays.
    newer = await update(hg, prompt, prompt["versionId"], major=False)
    assert await data(hg, "DELETE", f"/{pid}/{prompt['versionId']}") is None
    status, _ = await call(hg, "POST", "/query/production-version", json={"promptId": pid})
    assert status == 404
    assert (await data(hg, "GET", f"/id/{pid}"))["environments"] == {}
    status, answer = await call(hg, "DELETE", f"/{pid}/{newer}")
    assert status == 409, answer
    assert "delete the prompt" in answer["error"]
    # A version is deleted through its own prompt only.
    assert (await call(hg, "DELETE", f"/{other['id']}/{newer}"))[0] == 404

    assert await data(hg, "DELETE", f"/{pid}") is None
    assert (await call(hg, "GET", f"/id/{pid}"))[0] == 404
    assert (await call(hg, "POST", "/query/version", json={"promptVersionId": newer}))[0] == 404
    assert (await call(hg, "DELETE", f"/{pid}"))[0] == 404
    assert [p["id"] for p in await data(hg, "POST", "/query", {})] == [other["id"]]

    lines = hg.running.services.audit.query(AuditQuery(hg.organization_id, action="prompt."))
    assert sorted(line.action for line in lines if line.target_id == pid) == [
        "prompt.create",
        "prompt.delete",
        "prompt.rename",
        "prompt.rename",
        "prompt.tags",
        "prompt.version.create",
        "prompt.version.delete",
    ]
    assert all(line.target_type == "prompt" for line in lines)
    assert not any("messages" in str(line.details) for line in lines)  # no bodies in the log


async def test_another_organizations_ids_are_not_found(heliograph: Heliograph) -> None:
    hg = heliograph
    _, other_key = hg.new_organization()
    theirs = await create(hg, "theirs", ["secret"], key=other_key)
    mine = await create(hg, "mine")
    pid, vid = theirs["id"], theirs["versionId"]
    reads: list[tuple[str, str, Any]] = [
        ("GET", f"/id/{pid}", None),
        ("GET", f"/{vid}/prompt-body", None),
        ("POST", "/query/version", {"promptVersionId": vid}),
        ("POST", "/query/versions", {"promptId": pid}),
        ("POST", "/query/production-version", {"promptId": pid}),
        ("POST", "/query/environment-version", {"promptId": pid, "environment": "production"}),
        ("POST", "/query/total-versions", {"promptId": pid}),
    ]
    deploy = {"promptId": pid, "promptVersionId": vid, "environment": "staging"}
    update_body = {"promptId": pid, "promptVersionId": vid, "promptBody": BODY}
    writes: list[tuple[str, str, Any]] = [
        ("POST", "/update", update_body),
        ("POST", "/update", {**update_body, "promptId": mine["id"]}),  # my prompt, their version
        ("POST", "/update/environment", deploy),
        ("POST", "/update/environment", {**deploy, "promptId": mine["id"]}),
        ("POST", "/remove/environment", {**deploy, "environment": "production"}),
        ("POST", f"/id/{pid}/rename", {"name": "stolen"}),
        ("PATCH", f"/id/{pid}/rename", {"name": "stolen"}),
        ("PATCH", f"/id/{pid}/tags", {"tags": ["stolen"]}),
        ("DELETE", f"/{pid}/{vid}", None),
        ("DELETE", f"/{mine['id']}/{vid}", None),
        ("DELETE", f"/{pid}", None),
    ]
    for method, path, body in reads + writes:
        status, answer = await call(hg, method, path, json=body)
        assert status == 404, (method, path, answer)
        assert "theirs" not in str(answer)
        assert "secret" not in str(answer)
    listed = await data(hg, "POST", "/query", {})
    assert [p["id"] for p in listed] == [mine["id"]]
    assert await data(hg, "GET", "/tags") == []
    assert await data(hg, "GET", "/count") == 1
    # Nothing of theirs changed.
    status, answer = await call(hg, "GET", f"/id/{pid}", other_key)
    assert status == 200
    assert answer["data"]["name"] == "theirs"
    assert answer["data"]["tags"] == ["secret"]
    assert answer["data"]["environments"] == {"production": vid}
    assert answer["data"]["version_count"] == 1
    mine_now = await data(hg, "GET", f"/id/{mine['id']}")
    assert mine_now["version_count"] == 1
    assert mine_now["environments"] == {"production": mine["versionId"]}


async def test_read_only_key_reads_but_cannot_change(heliograph: Heliograph) -> None:
    hg = heliograph
    prompt = await create(hg)
    pid, vid = prompt["id"], prompt["versionId"]
    keys = hg.running.services.keys
    read_only = keys.create_key(hg.organization_id, "ro", KeyPermissions.READ).api_key
    assert (await call(hg, "GET", f"/id/{pid}", read_only))[0] == 200
    assert (await call(hg, "POST", "/query", read_only, json={}))[0] == 200
    assert (await call(hg, "GET", f"/{vid}/prompt-body", read_only))[0] == 200
    deploy = {"promptId": pid, "promptVersionId": vid, "environment": "staging"}
    for method, path, body in [
        ("POST", "", {"name": "x", "promptBody": BODY}),
        ("POST", "/update", {"promptId": pid, "promptVersionId": vid, "promptBody": BODY}),
        ("POST", "/update/environment", deploy),
        ("POST", "/remove/environment", deploy),
        ("POST", f"/id/{pid}/rename", {"name": "x"}),
        ("PATCH", f"/id/{pid}/tags", {"tags": []}),
        ("DELETE", f"/{pid}/{vid}", None),
        ("DELETE", f"/{pid}", None),
    ]:
        status, answer = await call(hg, method, path, read_only, json=body)
        assert status == 403, (method, path, answer)
    assert (await call(hg, "GET", f"/id/{pid}", "sk-wrong"))[0] == 401
    got = await data(hg, "GET", f"/id/{pid}")
    assert (got["name"], got["version_count"], got["environments"]) == (
        "writer",
        1,
        {"production": vid},
    )


async def test_bad_input_is_refused_and_nothing_saved(heliograph: Heliograph) -> None:
    hg = heliograph
    huge = {"model": "m", "messages": [{"role": "user", "content": "x" * MAX_BODY_BYTES}]}
    deep: Any = "leaf"
    for _ in range(40):
        deep = {"nested": deep}
    cases: list[tuple[Any, int, str]] = [
        ({"name": "x", "promptBody": ["not", "an", "object"]}, 400, "JSON object"),
        ({"name": "x", "promptBody": "text"}, 400, "JSON object"),
        ({"name": "x", "promptBody": {"messages": "hi"}}, 400, "messages"),
        ({"name": "x", "promptBody": {"model": 4}}, 400, "model"),
        ({"name": "x", "promptBody": {"model": "m" * 300}}, 400, "model"),
        ({"name": "x", "promptBody": {"prompt_id": "abc"}}, 400, "prompt"),
        (
            {"name": "x", "promptBody": {"messages": [{"content": "{{hc:a:date}}"}]}},
            400,
            "type 'date'",
        ),
        (
            {
                "name": "x",
                "promptBody": {"messages": [{"content": "{{hc:a:string}} {{hc:a:number}}"}]},
            },
            400,
            "both",
        ),
        ({"name": "x", "promptBody": {"tools": [deep]}}, 400, "deep"),
        ({"name": "x", "promptBody": huge}, 413, "KiB"),
        ({"name": "x"}, 400, "promptBody"),
        ({"name": "x", "promptBody": BODY, "extra": 1}, 400, "extra"),
        ({"name": "   ", "promptBody": BODY}, 400, "name"),
        ({"name": "a\u0007b", "promptBody": BODY}, 400, "name"),
        ({"name": "x" * 600, "promptBody": BODY}, 400, "name"),
        (
            {
                "name": "x",
                "tags": ["t"] * 0 + [f"t{i}" for i in range(MAX_TAGS + 1)],
                "promptBody": BODY,
            },
            400,
            "tags",
        ),
        ({"name": "x", "tags": ["y" * 65], "promptBody": BODY}, 400, "tag"),
        ({"name": "x", "tags": "blog", "promptBody": BODY}, 400, "tags"),
        ({"name": 5, "promptBody": BODY}, 400, "name"),
    ]
    for body, expected, word in cases:
        status, answer = await call(hg, "POST", "", json=body)
        assert status == expected, (str(body)[:200], answer)
        assert word.lower() in answer["error"].lower(), answer
        assert answer["data"] is None
    for raw in (b"{not json", b'{"name": "x\xff", "promptBody": {}}', b"[]", b""):
        headers = {**hg.auth(), "Content-Type": "application/json"}
        async with aiohttp.ClientSession() as session:
            async with session.post(hg.api + BASE, data=raw, headers=headers) as response:
                assert response.status == 400, raw
    assert await data(hg, "GET", "/count") == 0

    prompt = await create(hg)
    pid, vid = prompt["id"], prompt["versionId"]
    bad_environments = ["Production", "", "has space", "x" * 65, "../prod", "prod\u0000"]
    for environment in bad_environments:
        deploy = {"promptId": pid, "promptVersionId": vid, "environment": environment}
        status, answer = await call(hg, "POST", "/update/environment", json=deploy)
        assert status == 400, (environment, answer)
        query = {"promptId": pid, "environment": environment}
        assert (await call(hg, "POST", "/query/environment-version", json=query))[0] == 400
        update_body = {
            "promptId": pid,
            "promptVersionId": vid,
            "promptBody": BODY,
            "environment": environment,
        }
        assert (await call(hg, "POST", "/update", json=update_body))[0] == 400
    refused_updates = [
        {"promptId": pid, "promptVersionId": vid, "promptBody": BODY, "newMajorVersion": "yes"},
        {"promptId": pid, "promptVersionId": vid, "promptBody": BODY, "commitMessage": "m" * 2001},
        {"promptId": pid, "promptVersionId": vid, "promptBody": [1]},
        {"promptId": "bad id!", "promptVersionId": vid, "promptBody": BODY},
        {"promptId": pid, "promptVersionId": "x\u0000", "promptBody": BODY},
        {"promptId": pid, "promptBody": BODY},
    ]
    for body in refused_updates:
        status, answer = await call(hg, "POST", "/update", json=body)
        assert status == 400, (body, answer)
    for path in (f"/id/{'x' * 65}", "/id/bad%20id", f"/{'x' * 65}/prompt-body"):
        assert (await call(hg, "GET", path))[0] == 400, path
    bad_queries: list[Any] = [{"pageSize": 0}, {"page": -1}, {"pageSize": 5000}, {"search": 5}]
    for body in bad_queries:
        assert (await call(hg, "POST", "/query", json=body))[0] == 400, body
    # Strange but valid text is kept as sent (NUL dropped); nothing else changed.
    versions = await data(hg, "POST", "/query/versions", {"promptId": pid})
    assert [v["id"] for v in versions] == [vid]
    assert (await data(hg, "GET", f"/id/{pid}"))["environments"] == {"production": vid}


async def test_bodies_are_kept_as_sent_within_reason(heliograph: Heliograph) -> None:
    hg = heliograph
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "é\u0000 🚀 {{ hc : who : string }}"}],
        "seed": 2**70,
        "metadata": {"nested": [1, 2.5, None, True]},
    }
    status, answer = await call(hg, "POST", "", json={"name": "odd", "promptBody": body})
    assert status == 201, answer
    stored = await data(
        hg, "POST", "/query/version", {"promptVersionId": answer["data"]["versionId"]}
    )
    assert stored["prompt_body"]["messages"][0]["content"] == "é 🚀 {{ hc : who : string }}"
    assert stored["prompt_body"]["seed"] == str(2**70)  # wider than any JSON encoder takes
    assert stored["prompt_body"]["metadata"] == {"nested": [1, 2.5, None, True]}
    assert stored["variables"] == [{"name": "who", "type": "string"}]
    duplicate = {"name": "odd", "promptBody": BODY}
    status, answer = await call(hg, "POST", "", json=duplicate)
    assert status == 409
    assert "odd" in answer["error"]


async def test_caps_are_409s(heliograph: Heliograph, monkeypatch: pytest.MonkeyPatch) -> None:
    hg = heliograph
    monkeypatch.setattr(prompts, "MAX_PROMPTS", 2)
    monkeypatch.setattr(prompts, "MAX_VERSIONS", 2)
    prompt = await create(hg, "one")
    await create(hg, "two")
    status, answer = await call(hg, "POST", "", json={"name": "three", "promptBody": BODY})
    assert status == 409
    assert "at most 2 prompts" in answer["error"]
    await update(hg, prompt, prompt["versionId"], major=False)
    body = {"promptId": prompt["id"], "promptVersionId": prompt["versionId"], "promptBody": BODY}
    status, answer = await call(hg, "POST", "/update", json=body)
    assert status == 409
    assert "at most 2 versions" in answer["error"]
    assert await data(hg, "GET", "/count") == 2


async def test_concurrent_changes_take_turns(heliograph: Heliograph) -> None:
    hg = heliograph
    prompt = await create(hg)
    body = {"promptId": prompt["id"], "promptVersionId": prompt["versionId"], "promptBody": BODY}
    answers = await asyncio.gather(*(call(hg, "POST", "/update", json=body) for _ in range(8)))
    assert [status for status, _ in answers] == [200] * 8, answers
    versions = await data(hg, "POST", "/query/versions", {"promptId": prompt["id"]})
    numbers = sorted((v["major_version"], v["minor_version"]) for v in versions)
    assert numbers == [(1, minor) for minor in range(9)]
    # Racing first deployments of a new environment: one row, the last one wins.
    deploys = [
        {"promptId": prompt["id"], "promptVersionId": v["id"], "environment": "qa"}
        for v in versions[:4]
    ]
    answers = await asyncio.gather(
        *(call(hg, "POST", "/update/environment", json=d) for d in deploys)
    )
    assert [status for status, _ in answers] == [200] * 4, answers
    held = (await data(hg, "GET", f"/id/{prompt['id']}"))["environments"]
    assert set(held) == {"production", "qa"}
    assert held["qa"] in {v["id"] for v in versions[:4]}


async def test_s3_url_serves_the_body_without_a_key(heliograph: Heliograph) -> None:
    """Helicone's SDK (`HeliconePromptManager`) asks for the production version, then fetches
    its `s3_url` with no credentials: the link works alone, for an hour, and only as issued."""
    hg = heliograph
    prompt = await create(hg)
    version = await data(hg, "POST", "/query/production-version", {"promptId": prompt["id"]})
    url = version["s3_url"]
    assert url.startswith(hg.running.services.settings.resolved_public_url + BASE)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.get(url) as response:
            assert response.status == 200
            assert await response.json() == BODY
        token = url.rsplit("/", 1)[1]
        key_id, _, sealed = token.partition(".")
        flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
        for bad in (f"{key_id}.{flipped}", f"0000000000000000.{sealed}", "x", "x.", "." * 40):
            async with session.get(f"{hg.api}{BASE}/shared-body/{bad}") as response:
                assert response.status == 404, bad
                assert "link" in (await response.json())["error"]
    services = hg.running.services
    expired = PromptBodyLinks(services.vault, hg.api, ttl_s=-1).url(
        hg.organization_id, prompt["versionId"]
    )
    status, _ = await call_url(expired)
    assert status == 404
    # A link is bound to its organization: the version is read as that organization's.
    _, other_key = hg.new_organization()
    theirs = await create(hg, "theirs", key=other_key)
    forged = PromptBodyLinks(services.vault, hg.api).url(hg.organization_id, theirs["versionId"])
    assert (await call_url(forged))[0] == 404
    # Every version answer carries a working link; a deleted version's link stops working.
    newer = await update(hg, prompt, prompt["versionId"], major=True)
    versions = await data(hg, "POST", "/query/versions", {"promptId": prompt["id"]})
    links = {v["id"]: v["s3_url"] for v in versions}
    assert (await call_url(links[newer])) == (200, {**BODY, "max_tokens": 20})
    assert await data(hg, "DELETE", f"/{prompt['id']}/{newer}") is None
    assert (await call_url(links[newer]))[0] == 404


async def call_url(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        async with session.get(url) as response:
            return response.status, await response.json()
