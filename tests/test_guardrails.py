"""Guardrails: OpenAI moderation of the last user message before a request goes out."""

from __future__ import annotations

import aiohttp
import orjson
import pytest

from conftest import Fake, Heliograph

MODERATED = {"Helicone-Moderations-Enabled": "true", "Authorization": "Bearer sk-caller"}


async def chat(hg: Heliograph, content: object) -> tuple[int, dict[str, str], dict[str, object]]:
    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "user", "content": "forbidden words in an earlier turn do not count"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": content},
        ],
    }
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{hg.gateway}/openai/v1/chat/completions",
            json=body,
            headers={**hg.gateway_auth(), **MODERATED},
        ) as response:
            return response.status, dict(response.headers), orjson.loads(await response.read())


async def test_flagged_prompt_is_400_never_forwarded_and_logged(
    heliograph: Heliograph, fake: Fake
) -> None:
    status, headers, body = await chat(heliograph, "something forbidden")
    assert status == 400
    assert body["error"]["code"] == "PROMPT_FLAGGED_FOR_MODERATION"  # type: ignore[index]
    paths = [seen["path"] for seen in fake.seen.requests]
    assert paths == ["/v1/moderations"], "the chat request must not reach the provider"
    moderation = fake.seen.requests[0]
    assert moderation["headers"]["authorization"] == "Bearer sk-caller"
    assert moderation["body"] == {"input": "something forbidden"}
    row = await heliograph.wait_for(headers["Helicone-Id"])
    assert row["response_status"] == 400
    assert row["properties"]["Helicone-Moderation-Status"] == "flagged"
    assert "violence" in row["error"]


@pytest.mark.parametrize(
    "content", ["a kind question", [{"type": "text", "text": "a kind question in parts"}]]
)
async def test_clean_prompt_goes_through(
    heliograph: Heliograph, fake: Fake, content: object
) -> None:
    status, _, _ = await chat(heliograph, content)
    assert status == 200
    assert [seen["path"] for seen in fake.seen.requests] == [
        "/v1/moderations",
        "/v1/chat/completions",
    ]


async def test_moderation_outage_fails_open_with_a_warning(heliograph: Heliograph) -> None:
    status, headers, _ = await chat(heliograph, "moderation-down please")
    assert status == 200
    assert headers["Helicone-Moderation-Warning"] == "moderation returned 503"


SECRETIVE = (
    "I am ann@example.com, call me on +1 415-555-2671, card 4242 4242 4242 4242, "
    "my key is sk-proj-abcdefghijklmnopqrstuvwx"
)


async def test_pii_is_redacted_before_it_is_stored(heliograph: Heliograph) -> None:
    status, body = await heliograph.api_put(
        "/v1/settings/redaction", {"kinds": ["email", "phone", "card", "secret"]}
    )
    assert status == 200, body
    status, headers, answer = await chat(heliograph, SECRETIVE)
    assert status == 200
    assert "choices" in answer, "what the client receives is untouched"
    row = await heliograph.wait_for(headers["Helicone-Id"])
    stored = row["request_body"]["messages"][-1]["content"]
    assert stored == (
        "I am [REDACTED_EMAIL], call me on [REDACTED_PHONE], card [REDACTED_CARD], "
        "my key is [REDACTED_SECRET]"
    )

    _, other_key = heliograph.new_organization("relaxed")
    status, headers, _ = await chat_as(heliograph, other_key, SECRETIVE)
    row = await heliograph.wait_for(headers["Helicone-Id"], key=other_key)
    assert row["request_body"]["messages"][-1]["content"] == SECRETIVE, (
        "settings are per organization"
    )


async def test_unknown_redaction_kind_is_400(heliograph: Heliograph) -> None:
    status, body = await heliograph.api_put("/v1/settings/redaction", {"kinds": ["email", "dna"]})
    assert status == 400
    assert "dna" in body["error"]
    status, body = await heliograph.api_get("/v1/settings/redaction")
    assert body["data"]["kinds"] == []


async def chat_as(
    hg: Heliograph, key: str, content: str
) -> tuple[int, dict[str, str], dict[str, object]]:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]}
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{hg.gateway}/openai/v1/chat/completions", json=body, headers=hg.gateway_auth(key)
        ) as response:
            return response.status, dict(response.headers), orjson.loads(await response.read())
