"""Prompts at request time: a prompt created, versioned and deployed through the API, called by id
through the gateway with the OpenAI SDK (streaming and not, by version and by environment); the
fake provider receives the compiled body exactly; refusals are 400s that name what is wrong,
recorded and never forwarded; a deploy reaches the gateway (in-process, and a gateway process)
within 5 s; the request's inputs are read back; other organizations' prompts stay unknown. On
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import openai
import orjson
import pytest

from conftest import Fake, Heliograph
from fake_provider import TEXT
from heliograph.appdb.prompt_lookups import PromptLookups, PromptRef, PromptVersionRow
from heliograph.domain.record import Attribution
from heliograph.gateway.prompts import PromptCompiler, PromptsUnavailable
from heliograph.services.prompt_cache import PromptCache
from test_gateway_process import gateway_process

BASE = "/v1/prompt-2025"
CHAT = "/openai/v1/chat/completions"
BODY = {
    "model": "gpt-4o-mini",
    "temperature": "{{hc:temperature:number}}",
    "messages": [
        {"role": "system", "content": "You write about {{hc:topic:string}}."},
        {"role": "user", "content": "Short? {{hc:short:boolean}}"},
    ],
}
INPUTS = {"topic": "tides", "temperature": "0.5", "short": True}
COMPILED_MESSAGES = [
    {"role": "system", "content": "You write about tides."},
    {"role": "user", "content": "Short? true"},
]
PROMPT_FIELDS = {"prompt_id", "version_id", "environment", "inputs"}


@pytest.fixture
def heliograph(heliograph_on_each_db: Heliograph) -> Heliograph:
    return heliograph_on_each_db


@pytest.fixture
async def sdk(heliograph: Heliograph) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        api_key="sk-provider-key",
        base_url=f"{heliograph.gateway}/openai/v1",
        default_headers={"Helicone-Auth": f"Bearer {heliograph.api_key}"},
        max_retries=0,
        timeout=10,
    ) as client:
        yield client


async def call_api(hg: Heliograph, path: str, body: Any, key: str | None = None) -> Any:
    status, answer = await hg.api_post(BASE + path, body, key)
    assert status in (200, 201), (path, answer)
    return answer["data"]


async def create_prompt(hg: Heliograph, name: str = "writer", key: str | None = None) -> str:
    created = await call_api(hg, "", {"name": name, "tags": [], "promptBody": BODY}, key)
    return str(created["id"])


async def new_version(hg: Heliograph, prompt_id: str, body: dict[str, Any]) -> str:
    production = await call_api(hg, "/query/production-version", {"promptId": prompt_id})
    update = {
        "promptId": prompt_id,
        "promptVersionId": production["id"],
        "newMajorVersion": False,
        "commitMessage": "next",
        "promptBody": body,
    }
    return str((await call_api(hg, "/update", update))["id"])


async def deploy(hg: Heliograph, prompt_id: str, version_id: str, environment: str) -> None:
    body = {"promptId": prompt_id, "promptVersionId": version_id, "environment": environment}
    await call_api(hg, "/update/environment", body)


async def raw_chat(
    hg: Heliograph, body: Any, key: str | None = None, path: str = CHAT
) -> tuple[int, Any, str]:
    headers = {**hg.gateway_auth(key), "Authorization": "Bearer sk-provider-key"}
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        async with session.post(hg.gateway + path, data=data, headers=headers) as response:
            raw = await response.read()
            return response.status, orjson.loads(raw), response.headers.get("Helicone-Id", "")


def sent(fake: Fake) -> dict[str, Any]:
    body: dict[str, Any] = fake.seen.requests[-1]["body"]
    assert not PROMPT_FIELDS & set(body), "the prompt fields are never forwarded"
    return body


async def test_a_deployed_prompt_is_compiled_and_the_request_linked_to_its_version(
    heliograph: Heliograph, fake: Fake, sdk: openai.AsyncOpenAI
) -> None:
    hg = heliograph
    prompt_id = await create_prompt(hg)
    production = await call_api(hg, "/query/production-version", {"promptId": prompt_id})

    raw = await sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "And one more thing."}],
        max_tokens=50,
        extra_body={"prompt_id": prompt_id, "inputs": INPUTS},
    )
    assert raw.parse().choices[0].message.content == TEXT
    assert sent(fake) == {
        "model": "gpt-4o-mini",
        "temperature": 0.5,  # a value that is one variable takes the variable's type
        "max_tokens": 50,
        "messages": [*COMPILED_MESSAGES, {"role": "user", "content": "And one more thing."}],
    }
    request_id = raw.headers["helicone-id"]
    row = await hg.wait_for(request_id, timeout_s=5)
    assert row["request_body"] == sent(fake), "the record keeps the body as forwarded"
    assert row["properties"]["Helicone-Prompt-Id"] == prompt_id
    status, inputs = await hg.api_get(f"/v1/request/{request_id}/inputs")
    assert status == 200
    assert inputs["data"] == {
        "inputs": INPUTS,
        "prompt_id": prompt_id,
        "version_id": production["id"],
        "environment": "production",
    }
    # Helicone's per-version read of the same inputs; another version or prompt is a 404.
    path = f"{BASE}/id/{prompt_id}/{production['id']}/inputs?requestId={request_id}"
    status, found = await hg.api_get(path)
    assert status == 200, found
    assert found["data"] == {
        "request_id": request_id,
        "version_id": production["id"],
        "inputs": INPUTS,
        "environment": "production",
    }
    other = await create_prompt(hg, "other")
    other_version = await call_api(hg, "/query/production-version", {"promptId": other})
    for wrong in (
        f"{BASE}/id/{other}/{production['id']}/inputs?requestId={request_id}",
        f"{BASE}/id/{prompt_id}/{other_version['id']}/inputs?requestId={request_id}",
        f"{BASE}/id/{prompt_id}/{production['id']}/inputs?requestId={uuid.uuid4()}",
    ):
        assert (await hg.api_get(wrong))[0] == 404, wrong
    _, rival_key = hg.new_organization("rival")
    assert (await hg.api_get(path, rival_key))[0] == 404, "another organization's request"
    assert (await hg.api_get(f"{BASE}/id/{prompt_id}/{production['id']}/inputs"))[0] == 400


async def test_a_version_streams_by_id_and_the_callers_parameters_win(
    heliograph: Heliograph, fake: Fake, sdk: openai.AsyncOpenAI
) -> None:
    hg = heliograph
    prompt_id = await create_prompt(hg)
    version_id = await new_version(hg, prompt_id, {**BODY, "max_tokens": 20, "top_p": 0.3})

    stream = await sdk.chat.completions.create(
        model="gpt-4o",
        messages=[],
        stream=True,
        top_p=0.9,
        extra_body={"prompt_id": prompt_id, "version_id": version_id, "inputs": INPUTS},
    )
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
    assert text == TEXT
    assert sent(fake) == {
        "model": "gpt-4o",
        "temperature": 0.5,
        "max_tokens": 20,
        "top_p": 0.9,
        "stream": True,
        "stream_options": {"include_usage": True},  # asked by the gateway, as for any stream
        "messages": COMPILED_MESSAGES,
    }


async def test_the_model_comes_from_the_version_when_the_caller_names_none(
    heliograph: Heliograph, fake: Fake
) -> None:
    hg = heliograph
    prompt_id = await create_prompt(hg)
    status, answer, request_id = await raw_chat(hg, {"prompt_id": prompt_id, "inputs": INPUTS})
    assert status == 200, answer
    assert sent(fake)["model"] == "gpt-4o-mini"
    row = await hg.wait_for(request_id, timeout_s=5)
    assert row["request_model"] == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        ({"inputs": {"temperature": 1, "short": "no"}}, "missing_prompt_input", "topic"),
        ({"inputs": {**INPUTS, "temperature": "warm"}}, "invalid_prompt_input", "temperature"),
        ({"inputs": {**INPUTS, "short": 3}}, "invalid_prompt_input", "short"),
        ({"inputs": INPUTS, "version_id": "no-such-version"}, "unknown_prompt", "no-such"),
        ({"inputs": INPUTS, "environment": "staging"}, "unknown_prompt", "staging"),
        ({"inputs": INPUTS, "environment": "Not An Env"}, "invalid_prompt", "environment"),
        ({"inputs": ["topic"]}, "invalid_prompt", "inputs"),
    ],
)
async def test_a_refused_prompt_call_is_a_400_naming_why_recorded_and_never_forwarded(
    heliograph: Heliograph, fake: Fake, body: dict[str, Any], code: str, says: str
) -> None:
    hg = heliograph
    prompt_id = await create_prompt(hg)
    before = len(fake.seen.requests)
    status, answer, request_id = await raw_chat(hg, {"prompt_id": prompt_id, **body})
    assert status == 400
    assert answer["error"]["code"] == code
    assert says in answer["error"]["message"]
    assert len(fake.seen.requests) == before, "never forwarded"
    row = await hg.wait_for(request_id, timeout_s=5)
    assert row["response_status"] == 400
    assert row["request_body"]["prompt_id"] == prompt_id, "recorded as the caller sent it"


async def test_inputs_that_would_swell_a_body_are_a_413_and_big_ones_compile_off_the_loop(
    heliograph: Heliograph, fake: Fake
) -> None:
    hg = heliograph
    repeated = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "{{hc:x:string}}" * 2000}],
    }
    created = await call_api(hg, "", {"name": "swell", "tags": [], "promptBody": repeated})
    before = len(fake.seen.requests)
    # 5,000 characters in 2,000 places: 10 million, past the cap; refused before substituting.
    status, answer, _ = await raw_chat(
        hg, {"prompt_id": created["id"], "inputs": {"x": "a" * 5000}}
    )
    assert status == 413
    assert answer["error"]["code"] == "prompt_too_large"
    assert len(fake.seen.requests) == before, "never forwarded"
    # 200 characters in 2,000 places (400 KB) compiles, on a worker thread, and is forwarded whole.
    status, _, _ = await raw_chat(hg, {"prompt_id": created["id"], "inputs": {"x": "b" * 200}})
    assert status == 200
    assert sent(fake)["messages"][0]["content"] == "b" * 200 * 2000


async def test_a_number_beyond_64_bits_is_kept_as_a_float(
    heliograph: Heliograph, fake: Fake
) -> None:
    prompt_id = await create_prompt(heliograph)
    for spelt in ("1e20", "-99999999999999999999"):
        inputs = {**INPUTS, "temperature": spelt}
        status, answer, _ = await raw_chat(heliograph, {"prompt_id": prompt_id, "inputs": inputs})
        assert status == 200, answer
        assert sent(fake)["temperature"] == float(spelt)


async def test_another_organizations_prompt_is_unknown(heliograph: Heliograph, fake: Fake) -> None:
    hg = heliograph
    _, other_key = hg.new_organization("other")
    theirs = await create_prompt(hg, "theirs", key=other_key)
    status, answer, _ = await raw_chat(hg, {"prompt_id": theirs, "inputs": INPUTS})
    never = await raw_chat(hg, {"prompt_id": "nosuch", "inputs": INPUTS})
    assert (status, never[0]) == (400, 400)
    assert answer["error"]["message"] == f"unknown prompt_id {theirs!r}"
    assert never[1]["error"]["message"] == "unknown prompt_id 'nosuch'", "the same refusal"
    assert not fake.seen.requests
    status, _, _ = await raw_chat(hg, {"prompt_id": theirs, "inputs": INPUTS}, key=other_key)
    assert status == 200, "its own organization can use it"


async def test_bodies_that_name_no_prompt_here_pass_untouched(
    heliograph: Heliograph, fake: Fake
) -> None:
    hg = heliograph
    inside = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": '"prompt_id"'}]}
    status, _, _ = await raw_chat(hg, inside)
    assert status == 200
    assert sent(fake) == inside
    embeddings = {"model": "text-embedding-3-small", "input": "x", "prompt_id": "p"}
    status, _, _ = await raw_chat(hg, embeddings, path="/openai/v1/embeddings")
    assert status == 200
    assert fake.seen.requests[-1]["body"] == embeddings, "only chat completions are compiled"
    broken = b'{"prompt_id": "p", "messages": ['  # not JSON: the provider says what is wrong
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        async with session.post(
            hg.gateway + CHAT, data=broken, headers=hg.gateway_auth()
        ) as response:
            assert response.status == 500  # the fake's JSON parser failing on what it got
            assert "helicone-error" not in response.headers, "not the gateway's own error"
    assert len(fake.seen.requests) == 2


async def test_a_caller_cannot_forge_the_prompt_properties(
    heliograph: Heliograph, fake: Fake
) -> None:
    hg = heliograph
    prompt_id = await create_prompt(hg)
    headers = {
        **hg.gateway_auth(),
        "Helicone-Property-Helicone-Prompt-Id": "forged",
        "Helicone-Property-Team": "tide",
    }
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        body = {"prompt_id": prompt_id, "inputs": INPUTS}
        async with session.post(hg.gateway + CHAT, json=body, headers=headers) as response:
            assert response.status == 200
            request_id = response.headers["Helicone-Id"]
    row = await hg.wait_for(request_id, timeout_s=5)
    assert row["properties"]["Helicone-Prompt-Id"] == prompt_id
    assert row["properties"]["team"] == "tide"
    assert "helicone-prompt-id" not in row["properties"], "the forged one is dropped"


async def test_a_deploy_reaches_the_gateway_within_5_s(heliograph: Heliograph, fake: Fake) -> None:
    hg = heliograph
    cache = hg.running.services.prompt_cache
    prompt_id = await create_prompt(hg)
    call = {"prompt_id": prompt_id, "inputs": INPUTS}
    assert (await raw_chat(hg, call))[0] == 200  # known now, answered from memory after
    assert (await raw_chat(hg, {**call, "environment": "staging"}))[0] == 400

    newer = await new_version(hg, prompt_id, {**BODY, "max_tokens": 7})
    await deploy(hg, prompt_id, newer, "production")
    await deploy(hg, prompt_id, newer, "staging")
    deployed = time.monotonic()
    await asyncio.wait_for(cache.refreshed(), 5)
    assert time.monotonic() - deployed < 5
    assert (await raw_chat(hg, call))[0] == 200
    assert sent(fake)["max_tokens"] == 7
    status, _, request_id = await raw_chat(hg, {**call, "environment": "staging"})
    assert status == 200, "the remembered refusal ran out with the re-check"
    row = await hg.wait_for(request_id, timeout_s=5)
    assert row["properties"]["Helicone-Prompt-Version"] == newer

    status, _ = await hg.api_post(
        BASE + "/remove/environment",
        {"promptId": prompt_id, "promptVersionId": newer, "environment": "staging"},
    )
    assert status == 200
    await asyncio.wait_for(cache.refreshed(), 5)
    status, answer, _ = await raw_chat(hg, {**call, "environment": "staging"})
    assert status == 400, "an undeploy reaches it too"
    assert "staging" in answer["error"]["message"]

    assert (await raw_chat(hg, {**call, "version_id": newer}))[0] == 200

    async with aiohttp.ClientSession() as session:
        async with session.delete(f"{hg.api}{BASE}/{prompt_id}", headers=hg.auth()) as response:
            assert response.status in (200, 204)
    await asyncio.wait_for(cache.refreshed(), 5)
    status, answer, _ = await raw_chat(hg, {**call, "version_id": newer})
    assert (status, answer["error"]["code"]) == (400, "unknown_prompt"), "and a delete"


class CountingLookups:
    """The real lookups, counting how often the app DB is asked about one reference."""

    def __init__(self, lookups: PromptLookups) -> None:
        self._lookups = lookups
        self.asked = 0

    def lookup(self, ref: PromptRef) -> PromptVersionRow:
        self.asked += 1
        return self._lookups.lookup(ref)

    def live_versions(self, version_ids: Sequence[str]) -> dict[str, str]:
        return self._lookups.live_versions(version_ids)

    def deployments(self, prompt_ids: Sequence[str]) -> dict[tuple[str, str, str], str]:
        return self._lookups.deployments(prompt_ids)


async def test_a_flood_of_one_unknown_prompt_reads_the_app_db_once(
    heliograph: Heliograph,
) -> None:
    hg = heliograph
    counting = CountingLookups(PromptLookups(hg.running.services.lookups))
    cache = PromptCache(counting, ttl_s=60)
    try:
        org = hg.organization_id
        answers = await asyncio.gather(
            *(cache.template(org, "nosuch", None, "production") for _ in range(200))
        )
        assert answers == [None] * 200
        for _ in range(200):
            assert await cache.template(org, "nosuch", None, "production") is None
        assert counting.asked == 1
    finally:
        await cache.close()


async def test_a_deploy_reaches_a_gateway_process_within_5_s(
    api: Heliograph, fake: Fake, tmp_path: Path
) -> None:
    """The API's app DB is SQLite here (the `api` fixture); the process re-reads it every 2 s."""
    prompt_id = await create_prompt(api)
    call = {"prompt_id": prompt_id, "inputs": INPUTS}
    headers = {**api.gateway_auth(), "Authorization": "Bearer sk-provider-key"}
    async with gateway_process(api, fake, tmp_path) as gateway:

        async def max_tokens_sent() -> Any:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                async with session.post(gateway + CHAT, json=call, headers=headers) as response:
                    assert response.status == 200
                    await response.read()
            return sent(fake).get("max_tokens")

        assert await max_tokens_sent() is None
        newer = await new_version(api, prompt_id, {**BODY, "max_tokens": 9})
        await deploy(api, prompt_id, newer, "production")
        deployed = time.monotonic()
        while await max_tokens_sent() != 9:
            assert time.monotonic() - deployed < 5, "a deploy did not reach the process in 5 s"
            await asyncio.sleep(0.1)


class AwaySource:
    async def template(
        self, organization_id: str, prompt_id: str, version_id: str | None, environment: str
    ) -> None:
        raise OSError("connection refused")


async def test_prompts_that_cannot_be_read_are_a_503_not_a_crash() -> None:
    compiler = PromptCompiler(AwaySource())
    body = orjson.dumps({"prompt_id": "p", "inputs": {}})
    attribution = Attribution()
    forwarded, refused = await compiler.compile(CHAT, "org", body, attribution)
    assert forwarded == body
    assert isinstance(refused, PromptsUnavailable)
    assert refused.status == 503
    assert attribution.properties == {}
