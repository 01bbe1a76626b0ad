"""AWS Bedrock through the gateway: boto3 on the passthrough route (its own signature covers the
gateway's host, so the gateway signs again with AWS credentials from the vault or the
environment, which the fake Bedrock verifies), and the unified API's `model/bedrock` through
Converse, streamed and not. Each request is logged as BEDROCK with its usage and cost."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped, unused-ignore]
import openai
import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped, unused-ignore]

from conftest import Fake, Heliograph, heliograph_settings, start_heliograph
from fake_provider import TEXT, bedrock_api
from fake_provider.shared import TOOL_ARGUMENTS

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Hi"}]}]


@pytest.fixture
async def with_aws(
    tmp_path: Path, analytics_dir: Path, fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Heliograph]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", bedrock_api.ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", bedrock_api.SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    instance = await start_heliograph(heliograph_settings(tmp_path, analytics_dir, fake))
    yield instance
    await instance.running.stop()


@pytest.fixture
async def without_aws(
    tmp_path: Path, analytics_dir: Path, fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Heliograph]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    instance = await start_heliograph(heliograph_settings(tmp_path, analytics_dir, fake))
    yield instance
    await instance.running.stop()


def boto_client(hg: Heliograph, key: str | None = None) -> Any:
    """boto3 as Helicone's users point it at a gateway: the endpoint, and `Helicone-Auth` added
    to every request. Its own credentials are not AWS's: the gateway signs instead."""
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=f"{hg.gateway}/bedrock",
        aws_access_key_id="AKIDCLIENTONLY",
        aws_secret_access_key="not-the-real-secret",
    )

    def add_auth(request: Any, **_: Any) -> None:
        request.headers["Helicone-Auth"] = f"Bearer {key or hg.api_key}"

    client.meta.events.register("before-sign.bedrock-runtime.*", add_auth)
    return client


async def test_boto3_converse_is_signed_by_the_gateway_and_logged(
    with_aws: Heliograph, fake: Fake
) -> None:
    client = boto_client(with_aws)
    answer = await asyncio.to_thread(client.converse, modelId=MODEL, messages=MESSAGES)
    assert answer["output"]["message"]["content"][0]["text"] == TEXT
    seen = fake.seen.requests[-1]
    assert seen["path"] == "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    assert bedrock_api.ACCESS_KEY_ID in seen["headers"]["authorization"]
    assert "AKIDCLIENTONLY" not in json.dumps(seen["headers"])
    assert "helicone-auth" not in seen["headers"]
    request_id = answer["ResponseMetadata"]["HTTPHeaders"]["helicone-id"]
    row = await with_aws.wait_for(request_id, timeout_s=5)
    assert row["provider"] == "BEDROCK"
    assert row["model"] == MODEL
    assert (row["prompt_tokens"], row["completion_tokens"]) == (12, 7)
    assert row["cost"] > 0


async def test_boto3_streams_pass_through_and_their_usage_is_read(
    with_aws: Heliograph, fake: Fake
) -> None:
    client = boto_client(with_aws)

    def converse_stream() -> tuple[str, str]:
        response = client.converse_stream(modelId=MODEL, messages=MESSAGES)
        text = "".join(
            event["contentBlockDelta"]["delta"].get("text", "")
            for event in response["stream"]
            if "contentBlockDelta" in event
        )
        return text, response["ResponseMetadata"]["HTTPHeaders"]["helicone-id"]

    text, request_id = await asyncio.to_thread(converse_stream)
    assert text == TEXT
    row = await with_aws.wait_for(request_id, timeout_s=5)
    assert row["is_stream"]
    assert (row["prompt_tokens"], row["completion_tokens"]) == (12, 7)
    assert row["cost"] > 0

    def invoke_stream() -> tuple[list[Any], str]:
        body = json.dumps(
            {
                "anthropic_version": "bedrock-2023-05-31",
                "max_tokens": 64,
                "messages": [{"role": "user", "content": "Hi"}],
            }
        )
        response = client.invoke_model_with_response_stream(modelId=MODEL, body=body)
        events = [json.loads(event["chunk"]["bytes"]) for event in response["body"]]
        return events, response["ResponseMetadata"]["HTTPHeaders"]["helicone-id"]

    events, request_id = await asyncio.to_thread(invoke_stream)
    assert any(event["type"] == "message_stop" for event in events)
    row = await with_aws.wait_for(request_id, timeout_s=5)
    assert row["prompt_tokens"] > 0
    assert row["cost"] > 0


async def test_an_organizations_own_aws_key_signs_its_calls(
    without_aws: Heliograph, fake: Fake
) -> None:
    client = boto_client(without_aws)
    with pytest.raises(ClientError) as refused:
        await asyncio.to_thread(client.converse, modelId=MODEL, messages=MESSAGES)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    status, _ = await without_aws.api_post(
        "/v1/api-keys/provider-key",
        {
            "providerName": "bedrock",
            "providerKey": f"{bedrock_api.ACCESS_KEY_ID}:{bedrock_api.SECRET_ACCESS_KEY}",
            "providerKeyName": "aws",
        },
    )
    assert status == 201
    answer = await within(5.0, lambda: client.converse(modelId=MODEL, messages=MESSAGES))
    assert answer["output"]["message"]["content"][0]["text"] == TEXT


async def within(seconds: float, call: Any) -> Any:
    """`call`'s answer once it stops being refused: a key stored after a refusal is seen
    within the gateway's key re-check (2 s)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            return await asyncio.to_thread(call)
        except ClientError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_a_wrong_aws_key_is_the_providers_403(without_aws: Heliograph) -> None:
    await without_aws.api_post(
        "/v1/api-keys/provider-key",
        {
            "providerName": "bedrock",
            "providerKey": f"{bedrock_api.ACCESS_KEY_ID}:wrong-secret-value",
            "providerKeyName": "aws",
        },
    )
    client = boto_client(without_aws)
    with pytest.raises(ClientError) as refused:
        await asyncio.to_thread(client.converse, modelId=MODEL, messages=MESSAGES)
    assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"


def sdk(hg: Heliograph) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{hg.gateway}/v1", api_key=hg.api_key, max_retries=0)


async def test_the_unified_api_reaches_bedrock_through_converse(
    with_aws: Heliograph, fake: Fake
) -> None:
    raw = await sdk(with_aws).chat.completions.with_raw_response.create(
        model=f"{MODEL}/bedrock", messages=[{"role": "user", "content": "Hi"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == TEXT
    assert fake.seen.requests[-1]["path"].endswith("/converse")
    row = await with_aws.wait_for(raw.headers["helicone-id"], timeout_s=5)
    assert row["provider"] == "BEDROCK"
    assert row["model"] == MODEL
    assert (row["prompt_tokens"], row["completion_tokens"]) == (12, 7)
    assert row["cost"] > 0


async def test_the_unified_api_streams_bedrock_and_calls_its_tools(with_aws: Heliograph) -> None:
    stream = await sdk(with_aws).chat.completions.create(
        model=f"{MODEL}/bedrock",
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    async for chunk in stream:
        usage = chunk.usage or usage
        text += "".join(choice.delta.content or "" for choice in chunk.choices)
    assert text == TEXT
    assert usage is not None
    assert usage.prompt_tokens == 12
    row = await with_aws.wait_for(stream.response.headers["helicone-id"], timeout_s=5)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (12, 7)
    completion = await sdk(with_aws).chat.completions.create(
        model=f"{MODEL}/bedrock",
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[
            {
                "type": "function",
                "function": {"name": "get_weather", "parameters": {"type": "object"}},
            }
        ],
    )
    calls = completion.choices[0].message.tool_calls or []
    assert completion.choices[0].finish_reason == "tool_calls"
    assert calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    assert TOOL_ARGUMENTS["city"] == "Paris"
