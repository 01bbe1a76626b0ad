"""Azure OpenAI through the passthrough routes, as Helicone's users call it: the official
`AzureOpenAI` client on `/azure` (the resource from HELIOGRAPH_AZURE_BASE_URL or
`Helicone-OpenAI-Api-Base`) or on `/openai` with `Helicone-OpenAI-Api-Base`; the `api-key`
header reaches the resource, the request is logged as AZURE and priced, and a resource outside
Azure's domains is refused like any target URL."""

from __future__ import annotations

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from conftest import Fake, Heliograph
from fake_provider import TEXT
from heliograph.gateway.targets import TargetPolicy, TargetRejected

API_VERSION = "2024-10-21"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello, Azure"}]


def azure_client(
    hg: Heliograph, route: str, api_base: str | None, api_version: str = API_VERSION
) -> openai.AsyncAzureOpenAI:
    headers = {**hg.gateway_auth()}
    if api_base is not None:
        headers["Helicone-OpenAI-Api-Base"] = api_base
    return openai.AsyncAzureOpenAI(
        azure_endpoint=f"{hg.gateway}/{route}",
        api_key="azure-resource-key",
        api_version=api_version,
        default_headers=headers,
        max_retries=0,
    )


@pytest.mark.parametrize(("route", "header"), [("azure", False), ("azure", True), ("openai", True)])
async def test_a_deployment_is_called_logged_and_priced(
    heliograph: Heliograph, fake: Fake, route: str, header: bool
) -> None:
    client = azure_client(heliograph, route, fake.origin if header else None)
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=MESSAGES,  # the deployment's name
    )
    assert raw.parse().choices[0].message.content == TEXT
    seen = fake.seen.requests[-1]
    assert (
        seen["path"]
        == f"/openai/deployments/gpt-4o-mini/chat/completions?api-version={API_VERSION}"
    )
    assert seen["headers"]["api-key"] == "azure-resource-key"
    assert not [name for name in seen["headers"] if name.startswith("helicone-")]
    row = await heliograph.wait_for(raw.headers["helicone-id"], timeout_s=5)
    assert row["provider"] == "AZURE"
    assert row["prompt_tokens"] > 0
    assert row["cost"] > 0, "priced with Azure's prices"


async def test_streams_ask_for_usage_only_where_azure_takes_it(
    heliograph: Heliograph, fake: Fake
) -> None:
    for version, asked in (("2024-10-21", True), ("2024-02-01", False)):
        client = azure_client(heliograph, "azure", None, version)
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        assert isinstance(stream, openai.AsyncStream)
        text = "".join(
            [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
        )
        assert text == TEXT
        body = fake.seen.requests[-1]["body"]
        assert ("stream_options" in body) is asked, version


@pytest.mark.parametrize(
    "api_base",
    [
        "https://evil.example.com",
        "http://myresource.openai.azure.com",  # not https
        "https://10.0.0.5",
        "https://myresource.openai.azure.com.evil.example",
        "https://myresource.openai.azure.com/openai/deployments",  # an origin only
        "not a url",
    ],
)
async def test_a_resource_outside_azure_is_refused(
    heliograph: Heliograph, fake: Fake, api_base: str
) -> None:
    before = len(fake.seen.requests)
    client = azure_client(heliograph, "openai", api_base)
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert "Helicone-OpenAI-Api-Base" in str(refused.value) or "Helicone-Target-Url" in str(
        refused.value
    )
    assert len(fake.seen.requests) == before, "never forwarded"


def test_azure_domains_are_accepted_and_listed_origins_trusted() -> None:
    policy = TargetPolicy([], ["http://127.0.0.1:9999"])
    for origin in (
        "https://myresource.openai.azure.com",
        "https://myresource.openai.azure.com/",
        "https://eastus.api.cognitive.microsoft.com.cognitiveservices.azure.com",
        "https://hub.services.ai.azure.com",
        "https://gateway.azure-api.net",
    ):
        assert policy.check_azure(origin) == origin.rstrip("/").lower()
    assert policy.check_azure("http://127.0.0.1:9999") == "http://127.0.0.1:9999"
    with pytest.raises(TargetRejected):
        policy.check_azure("https://openai.azure.com.attacker.example")
